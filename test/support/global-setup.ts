/**
 * Integration tests run against the real local stack. Bring it up when it is not already (the
 * script is idempotent and fast when everything is healthy). The stack is left running for the
 * next run; `npm run stack:down` stops it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const script = fileURLToPath(new URL('../../stack/stack.sh', import.meta.url));
  // Every integration project runs this, at the same time: one starts the stack, the others wait
  // for it behind the lock and then find it up. --close: the stack's daemons must not inherit the
  // lock's descriptor, or it would be held for as long as they run.
  const stackHome = fileURLToPath(new URL('../../.stack/', import.meta.url));
  mkdirSync(stackHome, { recursive: true });
  const lock = `${stackHome}setup.lock`;
  const result = spawnSync('flock', ['--close', lock, 'bash', script, 'up'], { stdio: 'inherit', timeout: 20 * 60_000 });
  if (result.status !== 0) throw new Error(`stack/stack.sh up failed (exit ${String(result.status)}); see .stack/logs/`);
}
