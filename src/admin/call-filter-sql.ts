/** Calls the dashboard lists: every field optional; dates are UTC days, `to` included. */
export interface CallFilter {
  from?: string;
  to?: string;
  status?: string;
  outcome?: string;
  /** Digits found anywhere in the caller's or the called number. */
  number?: string;
  /** Words found in what the caller or the assistant said. */
  search?: string;
  profileId?: string;
}

/** The WHERE clause for a filter over `calls c`, with its parameters. */
export function callWhere(filter: CallFilter): { where: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (condition: (placeholder: string) => string, value: unknown) => {
    params.push(value);
    conditions.push(condition(`$${params.length}`));
  };
  if (filter.from) add((p) => `c.started_at >= ${utcDayStart(p)}`, filter.from);
  if (filter.to) add((p) => `c.started_at < ${utcDayEnd(p)}`, filter.to);
  if (filter.status) add((p) => `c.status = ${p}`, filter.status);
  if (filter.outcome) add((p) => `c.outcome = ${p}`, filter.outcome);
  if (filter.profileId) add((p) => `c.profile_id = ${p}`, filter.profileId);
  if (filter.number) {
    const digits = filter.number.replace(/\D/g, '');
    if (digits) {
      add((p) => `(regexp_replace(COALESCE(c.from_number, ''), '\\D', '', 'g') LIKE ${p} OR regexp_replace(COALESCE(c.to_number, ''), '\\D', '', 'g') LIKE ${p})`, `%${digits}%`);
    } else {
      add((p) => `(c.from_number ILIKE ${p} ESCAPE '\\' OR c.to_number ILIKE ${p} ESCAPE '\\')`, `%${escapeLike(filter.number)}%`);
    }
  }
  if (filter.search) {
    add(
      (p) => `EXISTS (SELECT 1 FROM turns s WHERE s.call_id = c.call_id AND (s.user_text ILIKE ${p} ESCAPE '\\' OR s.assistant_text ILIKE ${p} ESCAPE '\\'))`,
      `%${escapeLike(filter.search)}%`,
    );
  }
  return { where: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', params };
}

/** Midnight UTC of a `YYYY-MM-DD` parameter, whatever the session's time zone. */
export function utcDayStart(placeholder: string): string {
  return `(${placeholder}::date::timestamp AT TIME ZONE 'UTC')`;
}

/** Midnight UTC after that day: `to` is included. */
export function utcDayEnd(placeholder: string): string {
  return `((${placeholder}::date + 1)::timestamp AT TIME ZONE 'UTC')`;
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}
