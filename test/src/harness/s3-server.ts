/**
 * An S3-compatible server on loopback for backup tests: s3rver (npm), over HTTPS with a certificate
 * for `localhost` made here with openssl. pgBackRest checks the endpoint's name against the
 * certificate's DNS names only (an IP address never matches), so the repository's endpoint is
 * `localhost`, which /etc/hosts maps to 127.0.0.1, where the server listens. s3rver accepts any
 * request signed with its fixed credentials (S3RVER / S3RVER).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import S3rver from 's3rver';

/** A running server and how a repository reaches it. */
export interface S3Server {
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  readonly region: string;
  /** PEM file of the self-signed certificate (its own CA), readable by every user. */
  readonly caFile: string;
  readonly accessKey: string;
  readonly secretKey: string;
  /** Where s3rver keeps the objects (to look at what the repository holds). */
  readonly directory: string;
  close(): Promise<void>;
}

/** Starts s3rver with TLS on 127.0.0.1 and one bucket, keeping its files and certificate under `dir`. */
export async function startS3Server(dir: string, bucket = 'pgs'): Promise<S3Server> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const key = path.join(dir, 's3.key');
  const cert = path.join(dir, 's3.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  fs.chmodSync(cert, 0o644);
  const directory = path.join(dir, 'objects');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    key: fs.readFileSync(key),
    cert: fs.readFileSync(cert),
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  return {
    endpoint: 'localhost',
    port,
    bucket,
    region: 'us-east-1',
    caFile: cert,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    directory,
    close: () => server.close(),
  };
}
