/** The test workers run kafkajs clients too: hide the same one known kafkajs warning the service hides. */
import { filterKnownWarnings } from '../../src/warnings.ts';

filterKnownWarnings();
