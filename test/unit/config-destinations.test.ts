import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { destinationSettings } from '../../src/config-views.ts';
import { ConfigError } from '../../src/errors.ts';
import { thrownBy } from '../support/thrown.ts';

const two = JSON.stringify([
  { name: 'primary', bucket: 'tow-and-go' },
  { name: 'mirror', bucket: 'tow-and-go-mirror', prefix: 'copy/', region: 'eu-west-1', endpoint: 'https://s3.eu-west-1.amazonaws.com', compression: 'gzip' },
]);

describe('S3_DESTINATIONS', () => {
  it('unset: one destination, default, from the single-bucket settings', () => {
    const [only, ...rest] = destinationSettings(loadConfig({ S3_BUCKET: 'b-1', S3_PREFIX: 'p/', S3_COMPRESSION: 'gzip', S3_REGION: 'eu-north-1' }));
    expect(rest).toEqual([]);
    expect(only).toMatchObject({
      name: 'default',
      prefix: 'p/',
      compression: 'gzip',
      s3: { bucket: 'b-1', region: 'eu-north-1', endpoint: 'http://127.0.0.1:9000' },
    });
  });

  it('a list: each entry completed from the single-bucket settings; credentials shared', () => {
    const c = loadConfig({
      S3_DESTINATIONS: two,
      S3_PREFIX: 'p/',
      S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      S3_SECRET_ACCESS_KEY: 'secret',
      S3_ON_CONFLICT: 'overwrite',
    });
    const [primary, mirror] = destinationSettings(c);
    expect(primary).toMatchObject({
      name: 'primary',
      prefix: 'p/',
      compression: 'none',
      s3: { bucket: 'tow-and-go', region: 'us-east-1', onConflict: 'overwrite' },
    });
    expect(mirror).toMatchObject({
      name: 'mirror',
      prefix: 'copy/',
      compression: 'gzip',
      s3: { bucket: 'tow-and-go-mirror', region: 'eu-west-1', endpoint: 'https://s3.eu-west-1.amazonaws.com' },
    });
    expect(mirror?.s3.credentials).toEqual({ accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' });
  });

  it.each([
    ['not JSON', '[{name:', 'not valid JSON'],
    ['an empty list', '[]', 'expected at least one destination'],
    ['a missing bucket', '[{"name":"a"}]', 'bucket'],
    ['a bad bucket name', '[{"name":"a","bucket":"Bad_Bucket"}]', 'not a valid S3 bucket name'],
    ['an unknown field', '[{"name":"a","bucket":"bucket-a","acl":"public-read"}]', 'acl'],
    ['a bad name', '[{"name":"A B","bucket":"bucket-a"}]', 'name: lower-case letters'],
    ['a name twice', '[{"name":"a","bucket":"bucket-a"},{"name":"a","bucket":"bucket-b"}]', 'destination name a appears twice'],
    ['a bad prefix', '[{"name":"a","bucket":"bucket-a","prefix":"/x"}]', 'must be empty or end with "/"'],
    ['the same place twice', '[{"name":"a","bucket":"bucket-a"},{"name":"b","bucket":"bucket-a"}]', 'b writes to the same bucket and prefix'],
    [
      'credentials in an endpoint',
      '[{"name":"a","bucket":"bucket-a","endpoint":"http://key:hunter2@127.0.0.1:9000"}]',
      'the endpoint of a must not carry credentials',
    ],
  ])('refuses %s with a line naming S3_DESTINATIONS', (_what, value, message) => {
    const error = thrownBy(ConfigError, () => loadConfig({ S3_DESTINATIONS: value }));
    expect(error.message).toContain('S3_DESTINATIONS');
    expect(error.message).toContain(message);
    expect(error.message).not.toContain('hunter2');
  });
});
