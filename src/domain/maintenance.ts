// The weekly maintenance window (UTC) and when its notice is due.

import { parseDuration } from "../api/common.ts";
import type { DayOfWeek } from "../api/mendix-app.ts";

const DAYS: DayOfWeek[] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const HOUR_MS = 3_600_000;
const WEEK_MS = 7 * 24 * HOUR_MS;

export interface MaintenanceWindow {
  dayOfWeek: DayOfWeek;
  startTime: string;
  duration: string;
  noticeHours: number;
}

/** Start (ms) of the window now in progress, or else of the next one. */
export function currentOrNextWindow(w: MaintenanceWindow, nowMs: number): { start: number; end: number } {
  const [h, m] = w.startTime.split(":").map(Number);
  const now = new Date(nowMs);
  const dayDiff = (DAYS.indexOf(w.dayOfWeek) - now.getUTCDay() + 7) % 7;
  let start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + dayDiff, h ?? 0, m ?? 0);
  const length = parseDuration(w.duration) ?? 0;
  if (start + length <= nowMs) start += WEEK_MS;
  if (start - WEEK_MS + length > nowMs) start -= WEEK_MS; // last week's window still running
  return { start, end: start + length };
}

export interface MaintenanceDecision {
  /** The window in progress, or else the next one. */
  nextWindowStart: number;
  /** Send a notice now: noticeFor is set. */
  noticeDue: boolean;
  /** The window to tell about now: the nearest not yet started whose notice time has come and that was not told. */
  noticeFor?: number;
  /** When to look again: now when another window is due too, else the next notice time or the window's end. */
  recheckAt: number;
}

export function decideMaintenance(
  w: MaintenanceWindow,
  lastNoticeFor: number | undefined,
  nowMs: number,
): MaintenanceDecision {
  const { start, end } = currentOrNextWindow(w, nowMs);
  const notice = w.noticeHours * HOUR_MS;
  // noticeHours reaches up to two weeks, beyond the next window, so several windows not yet started may have
  // their notice time come at once (a new app, a longer noticeHours). Each is told, nearest first, one per
  // reconcile: after the window last told (lastNoticeFor) when that is one of them, else from the nearest (a new
  // app; a window that moved, whose old time is none of these).
  const upcoming = [0, 1, 2].map((k) => start + k * WEEK_MS).filter((s) => s > nowMs);
  const due = upcoming.filter((s) => s - notice <= nowMs);
  const untold =
    lastNoticeFor !== undefined && upcoming.includes(lastNoticeFor)
      ? due.filter((s) => s > lastNoticeFor)
      : due;
  const noticeFor = untold[0];
  const nextNotice = upcoming.map((s) => s - notice).find((t) => t > nowMs);
  return {
    nextWindowStart: start,
    noticeDue: noticeFor !== undefined,
    ...(noticeFor !== undefined ? { noticeFor } : {}),
    recheckAt: Math.min(
      // Another window is due as well: at once, once this notice is recorded.
      untold.length > 1 ? nowMs : Number.POSITIVE_INFINITY,
      nextNotice ?? Number.POSITIVE_INFINITY,
      start <= nowMs ? end : Number.POSITIVE_INFINITY,
    ),
  };
}

export function maintenanceText(
  app: string,
  startMs: number,
  duration: string,
): { title: string; body: string } {
  const when = new Date(startMs)
    .toISOString()
    .replace(/:00\.000Z$/, " UTC")
    .replace("T", " ");
  return {
    title: `Maintenance of ${app} on ${when}`,
    body: `Planned maintenance of ${app} starts ${when} and lasts up to ${duration} (its weekly maintenance window). The app may be unavailable during the window.`,
  };
}
