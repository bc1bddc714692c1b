/**
 * Service hours in the site's time zone. A range with `from` > `to` runs overnight: the entry for
 * `fri 22:00-06:00` covers Friday 22:00-24:00 and Saturday 00:00-06:00 (its days name the day the
 * shift starts). `from` == `to` means the whole day.
 */
export type Day = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
export interface ServiceHours {
  days: readonly Day[];
  from: string;
  to: string;
}

const DAYS: readonly Day[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    } catch {
      throw new Error(`site.timezone "${timeZone}" is not a valid IANA time zone (e.g. "Asia/Shanghai")`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a clear error for an unknown time zone; call once at start. */
export function checkTimeZone(timeZone: string): void {
  formatter(timeZone);
}

/** Day of week and minute of the day (0..1439) of `ts` in `timeZone`. */
export function localDayMinute(ts: number, timeZone: string): { day: Day; minute: number } {
  let weekday = '';
  let hour = 0;
  let minute = 0;
  for (const p of formatter(timeZone).formatToParts(new Date(ts))) {
    if (p.type === 'weekday') weekday = p.value.toLowerCase().slice(0, 3);
    else if (p.type === 'hour') hour = Number(p.value) % 24;
    else if (p.type === 'minute') minute = Number(p.value);
  }
  const day = DAYS.find((d) => d === weekday);
  if (!day) throw new Error(`could not read the weekday of ${new Date(ts).toISOString()} in ${timeZone}`);
  return { day, minute: hour * 60 + minute };
}

function toMinute(hhmm: string, what: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!m) throw new Error(`serviceHours ${what}: expected "HH:MM", got "${hhmm}"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function previousDay(d: Day): Day {
  return DAYS[(DAYS.indexOf(d) + 6) % 7]!;
}

export function inServiceHours(ts: number, hours: readonly ServiceHours[], timeZone: string): boolean {
  const { day, minute } = localDayMinute(ts, timeZone);
  for (let i = 0; i < hours.length; i++) {
    const h = hours[i]!;
    const from = toMinute(h.from, `[${i}].from`);
    const to = toMinute(h.to, `[${i}].to`);
    if (from === to) {
      if (h.days.includes(day)) return true;
    } else if (from < to) {
      if (h.days.includes(day) && minute >= from && minute < to) return true;
    } else {
      if (h.days.includes(day) && minute >= from) return true;
      if (h.days.includes(previousDay(day)) && minute < to) return true;
    }
  }
  return false;
}
