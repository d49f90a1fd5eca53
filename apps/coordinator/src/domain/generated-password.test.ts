import { describe, expect, it } from 'vitest';
import { generatePassword } from './generated-password.js';

describe('generated passwords', () => {
  it('are 24 URL-safe characters and differ each time', () => {
    const a = generatePassword();
    expect(a).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(generatePassword()).not.toBe(a);
  });
});
