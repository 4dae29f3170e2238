/**
 * A real S3Client whose HTTP handler is a function: the SDK builds, signs and parses everything as
 * it does against S3; only the wire is replaced. For unit tests of what the service sends and of
 * how it reads S3's answers. The real store: the integration tests on S3Proxy.
 */
import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';

export interface SentRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
}

export interface Reply {
  readonly response: { statusCode: number; headers: Record<string, string>; body: Readable };
}

/** An HTTP answer as the SDK's handler returns it. */
export function reply(statusCode: number, headers: Record<string, string> = {}, body: Buffer = Buffer.alloc(0)): Reply {
  return { response: { statusCode, headers, body: Readable.from([body]) } };
}

/** No retries (one request per call), path-style, checksums only where S3 requires them, as the service's own client. */
export function fakeS3Client(handle: (request: SentRequest) => Promise<Reply>, region = 'us-east-1'): S3Client {
  return new S3Client({
    region,
    endpoint: 'http://127.0.0.1:1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: { handle },
  });
}
