/**
 * A tiny schema registry on port 0 for fault paths the real one never shows (a 503, a hang, a
 * reset, a Protobuf answer on demand). It answers what the handler says, as JSON, and records
 * each request so tests can check paths and headers.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** A JSON answer; `hang` never answers, `reset` drops the connection. */
export type FakeAnswer = { readonly status: number; readonly body?: unknown; readonly raw?: string } | 'hang' | 'reset';

export interface FakeRegistry {
  /** Base URL, http://127.0.0.1:<port>, with `userinfo@` when given. */
  readonly url: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

export async function fakeRegistry(handler: (request: SeenRequest) => FakeAnswer, userinfo = ''): Promise<FakeRegistry> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers };
    requests.push(seen);
    req.resume();
    const answer = handler(seen);
    if (answer === 'hang') return;
    if (answer === 'reset') {
      req.socket.destroy();
      return;
    }
    res.writeHead(answer.status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
    res.end(answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${userinfo === '' ? '' : `${userinfo}@`}127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
