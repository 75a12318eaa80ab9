// The per-recipient cap: at most N messages per window to one person; the rest wait for a digest.
// Critical alerts always go through (and still count).
import type { Severity } from "./message.ts";

export class RecipientCap {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly sent = new Map<string, number[]>();

  /** `limit` 0 disables the cap. */
  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** Whether a message of `severity` may go to `recipient` now; an admitted message is counted. */
  admit(recipient: string, severity: Severity, now: number): boolean {
    if (!this.enabled) return true;
    const recent = (this.sent.get(recipient) ?? []).filter((t) => now - t < this.windowMs);
    const ok = severity === "Critical" || recent.length < this.limit;
    if (ok) recent.push(now);
    this.sent.set(recipient, recent);
    return ok;
  }

  /** Whether `recipient` could receive a message now, without counting one. */
  hasRoom(recipient: string, now: number): boolean {
    if (!this.enabled) return true;
    return (this.sent.get(recipient) ?? []).filter((t) => now - t < this.windowMs).length < this.limit;
  }
}
