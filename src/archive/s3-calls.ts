/** The archive's S3 calls go through here: every failure leaves as S3UnavailableError or S3RejectedError. */
import { classifyS3Error } from '../sink/s3.ts';

/** Runs one S3 call; its failure is classified once, by src/sink/s3.ts's rules (retryable or not). */
export async function guarded<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw classifyS3Error(error, what);
  }
}
