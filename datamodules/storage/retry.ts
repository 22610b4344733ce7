/** Retries with exponential backoff and jitter, for network back ends. */

export interface RetryOptions {
  /** Attempts in total (first try included). Default 5. */
  attempts?: number;
  /** First delay, ms; doubles each retry (with ±25% jitter), capped at `maxDelayMs`. Default 200. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Whether an error is worth retrying (default: every error). */
  retryable?: (err: unknown) => boolean;
  /** Called before each retry (for logging; messages must be redacted already). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Default retry settings; tests lower the delays through `LIGHTCLIP_RETRY_BASE_MS`. */
export function defaultRetry(): Required<Pick<RetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>> {
  const base = Number(process.env.LIGHTCLIP_RETRY_BASE_MS);
  return { attempts: 5, baseDelayMs: Number.isFinite(base) && base >= 0 ? base : 200, maxDelayMs: 10_000 };
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const d = defaultRetry();
  const attempts = options.attempts ?? d.attempts;
  const base = options.baseDelayMs ?? d.baseDelayMs;
  const cap = options.maxDelayMs ?? d.maxDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || (options.retryable && !options.retryable(err))) throw err;
      const delay = Math.min(cap, base * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
      options.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Replaces secrets in a URL or message: bearer tokens, `token=`/`X-Amz-*` query values, credentials. */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text
    .replace(/(Bearer\s+)[^\s"']+/gi, '$1<redacted>')
    .replace(/([?&](?:token|access_token|X-Amz-Security-Token|X-Amz-Signature|X-Amz-Credential)=)[^&\s"']*/gi, '$1<redacted>');
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('<redacted>');
  return out;
}
