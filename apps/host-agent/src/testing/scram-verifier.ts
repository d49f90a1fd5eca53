/**
 * Test builder: a SCRAM-SHA-256 verifier for a password (RFC 5802/7677, the form PostgreSQL stores),
 * so tests play the coordinator's part: the agent only ever sees the verifier.
 */
import crypto from 'node:crypto';

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for an ASCII password. */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = crypto.randomBytes(16);
  const salted = crypto.pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = crypto.createHash('sha256').update(clientKey).digest();
  const serverKey = crypto.createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
