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
  /** The window to tell about now: the latest not yet started whose notice time has come, unless told already. */
  noticeFor?: number;
  /** When to look again: the next notice time, or the end of the window in progress. */
  recheckAt: number;
}

export function decideMaintenance(
  w: MaintenanceWindow,
  lastNoticeFor: number | undefined,
  nowMs: number,
): MaintenanceDecision {
  const { start, end } = currentOrNextWindow(w, nowMs);
  const notice = w.noticeHours * HOUR_MS;
  // noticeHours reaches up to two weeks, beyond the next window: the notice due is that of the latest window
  // not yet started whose notice time has come (an earlier one's was due, and sent, before it).
  const upcoming = [0, 1, 2].map((k) => start + k * WEEK_MS).filter((s) => s > nowMs);
  const due = upcoming.filter((s) => s - notice <= nowMs).at(-1);
  const noticeFor = due !== lastNoticeFor ? due : undefined;
  const nextNotice = upcoming.map((s) => s - notice).find((t) => t > nowMs);
  return {
    nextWindowStart: start,
    noticeDue: noticeFor !== undefined,
    ...(noticeFor !== undefined ? { noticeFor } : {}),
    recheckAt: Math.min(
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
