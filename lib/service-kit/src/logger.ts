import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Fields that could ever hold key material are redacted
 * as a second line of defence: the code never logs them in the first place.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: ['secret', '*.secret', 'kek', '*.kek', 'key', '*.key', 'keys', '*.keys'],
      censor: '[redacted]',
    },
  });
}
