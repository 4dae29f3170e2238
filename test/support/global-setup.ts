/**
 * Integration tests run against the real local stack. Bring it up when it is not already (the
 * script is idempotent and fast when everything is healthy). The stack is left running for the
 * next run; `npm run stack:down` stops it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const script = fileURLToPath(new URL('../../stack/stack.sh', import.meta.url));
  const result = spawnSync('bash', [script, 'up'], { stdio: 'inherit', timeout: 20 * 60_000 });
  if (result.status !== 0) throw new Error(`stack/stack.sh up failed (exit ${String(result.status)}); see .stack/logs/`);
}
