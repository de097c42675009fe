import type { Database, Queryable } from './database.js';

export type ReservationStatus = 'confirmed' | 'cancelled';
/** Who made or last changed a reservation: the phone line, the dashboard or the admin API. */
export type ReservationSource = 'phone' | 'dashboard' | 'api';

/** One booking; `date` and `time` are the business's local day and time (`YYYY-MM-DD`, `HH:MM`). */
export interface ReservationRow {
  reservation_id: number;
  profile_id: string;
  call_id: string | null;
  name: string;
  phone: string | null;
  date: string;
  time: string;
  party_size: number;
  notes: string | null;
  status: ReservationStatus;
  source: ReservationSource;
  created_at: Date;
  updated_at: Date;
}

/** A booking to store; `date` and `time` already checked and normalised by the book. */
export interface NewReservation {
  profileId: string;
  callId?: string;
  name: string;
  phone?: string;
  date: string;
  time: string;
  partySize: number;
  notes?: string;
  source: ReservationSource;
}

/** Columns a change may set; those left undefined keep their value. */
export type ReservationChanges = Partial<{ date: string; time: string; partySize: number; name: string; notes: string | null; status: ReservationStatus; source: ReservationSource }>;

export interface ReservationFilter {
  profileId?: string;
  /** One day, or a range with `from`/`to` (both included). */
  date?: string;
  from?: string;
  to?: string;
  status?: ReservationStatus;
  /** Digits found in the phone number. */
  phone?: string;
  /** Text found in the name (case-insensitive). */
  name?: string;
}

const columns = `reservation_id::int AS reservation_id, profile_id, call_id, name, phone,
  to_char(reservation_date, 'YYYY-MM-DD') AS date, to_char(reservation_time, 'HH24:MI') AS time,
  party_size, notes, status, source, created_at, updated_at`;

/** Every query about reservations (the `reservations` table); SQL lives here and nowhere else. */
export class ReservationRepository {
  private writes = 0;

  constructor(private readonly db: Database) {}

  /**
   * Counts the reservation writes this process has made, so what was read
   * before one can tell it may be out of date. A write in a transaction
   * counts when its statement runs and again when the transaction ends, so a
   * read made between the two is not trusted either.
   */
  get writeGeneration(): number {
    return this.writes;
  }

  /**
   * Runs `work` in a transaction holding a lock on one profile's day, so two
   * bookings for the same day are checked against capacity one after the other.
   */
  withDayLocked<T>(profileId: string, dates: string[], work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db
      .transaction(async (tx) => {
        // Sorted, so two transactions locking the same two days never wait on each other in opposite orders.
        for (const date of [...new Set(dates)].sort()) {
          await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`reservations:${profileId}:${date}`]);
        }
        return work(tx);
      })
      .finally(() => {
        this.writes += 1;
      });
  }

  async create(reservation: NewReservation, tx: Queryable = this.db): Promise<ReservationRow> {
    const { rows } = await tx.query<ReservationRow>(
      `INSERT INTO reservations (profile_id, call_id, name, phone, reservation_date, reservation_time, party_size, notes, source)
       VALUES ($1, $2, $3, $4, $5::date, $6::time, $7, $8, $9)
       RETURNING ${columns}`,
      [reservation.profileId, reservation.callId ?? null, reservation.name, reservation.phone ?? null, reservation.date, reservation.time,
        reservation.partySize, reservation.notes ?? null, reservation.source],
    );
    this.writes += 1;
    return rows[0];
  }

  async get(reservationId: number, tx: Queryable = this.db): Promise<ReservationRow | undefined> {
    const { rows } = await tx.query<ReservationRow>(`SELECT ${columns} FROM reservations WHERE reservation_id = $1`, [reservationId]);
    return rows[0];
  }

  /** A profile's confirmed bookings on a day, for the capacity check. */
  async confirmedOn(profileId: string, date: string, tx: Queryable = this.db): Promise<ReservationRow[]> {
    const { rows } = await tx.query<ReservationRow>(
      `SELECT ${columns} FROM reservations WHERE profile_id = $1 AND reservation_date = $2::date AND status = 'confirmed' ORDER BY reservation_time`,
      [profileId, date],
    );
    return rows;
  }

  /** Confirmed bookings on or after `fromDate` made with this phone number, soonest first. */
  async upcomingByPhone(profileId: string, phone: string, fromDate: string, limit = 10): Promise<ReservationRow[]> {
    const { rows } = await this.db.query<ReservationRow>(
      `SELECT ${columns} FROM reservations
        WHERE profile_id = $1 AND phone = $2 AND status = 'confirmed' AND reservation_date >= $3::date
        ORDER BY reservation_date, reservation_time LIMIT $4`,
      [profileId, phone, fromDate, limit],
    );
    return rows;
  }

  /** Confirmed bookings on or after `fromDate` under this name (case and surrounding spaces ignored). */
  async upcomingByName(profileId: string, name: string, fromDate: string, limit = 10): Promise<ReservationRow[]> {
    const { rows } = await this.db.query<ReservationRow>(
      `SELECT ${columns} FROM reservations
        WHERE profile_id = $1 AND lower(trim(name)) = lower(trim($2)) AND status = 'confirmed' AND reservation_date >= $3::date
        ORDER BY reservation_date, reservation_time LIMIT $4`,
      [profileId, name, fromDate, limit],
    );
    return rows;
  }

  /**
   * The name a number last gave: from its latest reservation, or else from the
   * details collected on its latest call before `exceptCallId`.
   */
  async knownName(phone: string, exceptCallId?: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ name: string | null }>(
      `SELECT COALESCE(
         (SELECT name FROM reservations WHERE phone = $1 ORDER BY updated_at DESC LIMIT 1),
         (SELECT details->>'name' FROM calls
           WHERE from_number = $1 AND call_id IS DISTINCT FROM $2 AND details ? 'name'
           ORDER BY started_at DESC LIMIT 1)
       ) AS name`,
      [phone, exceptCallId ?? null],
    );
    const name = rows[0]?.name?.trim();
    return name ? name : undefined;
  }

  async update(reservationId: number, changes: ReservationChanges, tx: Queryable = this.db): Promise<ReservationRow | undefined> {
    const mapping: Record<keyof ReservationChanges, string> = {
      date: 'reservation_date = $%::date',
      time: 'reservation_time = $%::time',
      partySize: 'party_size = $%',
      name: 'name = $%',
      notes: 'notes = $%',
      status: 'status = $%',
      source: 'source = $%',
    };
    const entries = (Object.keys(mapping) as Array<keyof ReservationChanges>).filter((key) => changes[key] !== undefined);
    const sets = entries.map((key, index) => mapping[key].replace('%', String(index + 2)));
    const { rows } = await tx.query<ReservationRow>(
      `UPDATE reservations SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE reservation_id = $1 RETURNING ${columns}`,
      [reservationId, ...entries.map((key) => changes[key])],
    );
    this.writes += 1;
    return rows[0];
  }

  /** A page of reservations, by day and time (soonest first), and how many match. */
  async list(filter: ReservationFilter, page: { limit: number; offset: number }): Promise<{ rows: ReservationRow[]; total: number; guests: number }> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      conditions.push(sql.replace('$?', `$${params.length}`));
    };
    if (filter.profileId) add('profile_id = $?', filter.profileId);
    if (filter.date) add('reservation_date = $?::date', filter.date);
    if (filter.from) add('reservation_date >= $?::date', filter.from);
    if (filter.to) add('reservation_date <= $?::date', filter.to);
    if (filter.status) add('status = $?', filter.status);
    if (filter.phone) add(`regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') LIKE '%' || $? || '%'`, filter.phone.replace(/\D/g, ''));
    if (filter.name) add(`name ILIKE '%' || $? || '%'`, filter.name.replace(/[\\%_]/g, (character) => `\\${character}`));
    const where = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
    const [page_, totals] = await Promise.all([
      this.db.query<ReservationRow>(
        `SELECT ${columns} FROM reservations ${where} ORDER BY reservation_date, reservation_time, reservation_id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, page.limit, page.offset],
      ),
      this.db.query<{ total: number; guests: number }>(
        `SELECT count(*)::int AS total, coalesce(sum(party_size) FILTER (WHERE status = 'confirmed'), 0)::int AS guests FROM reservations ${where}`,
        params,
      ),
    ]);
    return { rows: page_.rows, total: totals.rows[0]?.total ?? 0, guests: totals.rows[0]?.guests ?? 0 };
  }
}
