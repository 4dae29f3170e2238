import { fileURLToPath } from 'node:url';

/** The repository root, with a trailing slash. Kept apart from stack.ts so that helpers which only run tools do not load the service. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
