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
  nextWindowStart: number;
  /** Send the notice for this window now. */
  noticeDue: boolean;
  /** When to look again: the notice time, or the end of the coming window. */
  recheckAt: number;
}

export function decideMaintenance(
  w: MaintenanceWindow,
  lastNoticeFor: number | undefined,
  nowMs: number,
): MaintenanceDecision {
  const { start, end } = currentOrNextWindow(w, nowMs);
  const noticeAt = start - w.noticeHours * HOUR_MS;
  const noticeDue = nowMs >= noticeAt && nowMs < start && lastNoticeFor !== start;
  return { nextWindowStart: start, noticeDue, recheckAt: nowMs < noticeAt ? noticeAt : end };
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
