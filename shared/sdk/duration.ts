/** google.protobuf.Duration in its JSON form ("30s", "1.5s", "0.000001s"). */
import { z } from 'zod';

const durationPattern = /^(-)?(\d{1,12})(?:\.(\d{1,9}))?s$/;

/** Milliseconds for a Duration string, or undefined when it is not one. */
export function parseDurationMs(text: string): number | undefined {
  const m = durationPattern.exec(text);
  if (!m) return undefined;
  const seconds = Number(m[2]);
  const fraction = m[3] === undefined ? 0 : Number(`0.${m[3]}`);
  const ms = (seconds + fraction) * 1000;
  return m[1] ? -ms : ms;
}

/** A Duration string for milliseconds. */
export function formatDuration(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(3).replace(/0+$/, '')}s`;
}

/** A non-negative Duration string, parsed to milliseconds. */
export const DurationMs = z
  .string()
  .max(32)
  .transform((text, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === undefined || ms < 0) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a non-negative duration such as "30s", got ${JSON.stringify(text)}`,
      });
      return z.NEVER;
    }
    return ms;
  });
