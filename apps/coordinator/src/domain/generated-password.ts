/** Passwords the platform makes itself (an owner who chose none, the replication role). */
import { randomBytes } from 'node:crypto';

/** A random password: 24 URL-safe characters (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
