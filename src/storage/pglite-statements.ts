import { parse, protocol, type PGlite } from '@electric-sql/pglite';

/**
 * Named prepared statements for one PGlite instance.
 *
 * `PGlite.query` parses and plans its SQL every time, and talks to the
 * WebAssembly backend six times per statement (parse, describe, bind,
 * describe, execute, sync). callme runs a few dozen distinct statements over
 * and over, so each is parsed once under a name, and every later run is one
 * message (bind, describe, execute, sync) handed to the backend in one go.
 * On a warm database that halves a primary-key SELECT or a small INSERT.
 *
 * Values are serialized as `PGlite.query` does (by the parameter types the
 * server reports) and rows parsed with the instance's own parsers, so callers
 * see exactly what `query` would give them.
 */
export class PgliteStatements {
  private readonly prepared = new Map<string, Prepared>();
  private nextId = 1;

  constructor(
    private readonly pglite: PGlite,
    /** Statements kept prepared; the least recently prepared one is closed past this. */
    private readonly capacity = 256,
  ) {}

  /**
   * Runs `sql` with `params`. `inTransaction` says the caller already holds
   * PGlite's transaction lock (it runs inside `pglite.transaction`), so only
   * the per-statement lock is taken; otherwise the statement also waits for
   * any open transaction to end, as `PGlite.query` does.
   */
  async query<Row>(sql: string, params: readonly unknown[], inTransaction: boolean): Promise<Row[]> {
    const work = () => this.pglite._runExclusiveQuery(() => this.execute<Row>(sql, params, true));
    const rows = inTransaction ? await work() : await this.pglite._runExclusiveTransaction(work);
    if (!inTransaction) await this.pglite.syncToFs();
    return rows;
  }

  private async execute<Row>(sql: string, params: readonly unknown[], retryStale: boolean): Promise<Row[]> {
    const statement = this.prepared.get(sql) ?? (await this.prepare(sql));
    const values = params.map((value, index) => this.serialize(value, statement.paramTypes[index]));
    let messages;
    try {
      messages = await this.pglite.execProtocolStream(
        join([protocol.serialize.bind({ statement: statement.name, values }), describePortal, executeAll, sync]),
        { syncToFs: false },
      );
    } catch (error) {
      // A statement prepared before a schema change may no longer fit it
      // ("cached plan must not change result type"); prepare it anew, once.
      if (retryStale && isStalePlan(error)) {
        this.prepared.delete(sql);
        await this.close(statement.name);
        return this.execute<Row>(sql, params, false);
      }
      throw withQuery(error, sql);
    }
    return (parse.parseResults(messages, this.pglite.parsers)[0]?.rows ?? []) as Row[];
  }

  private async prepare(sql: string): Promise<Prepared> {
    const name = `callme_${this.nextId++}`;
    let messages;
    try {
      messages = await this.pglite.execProtocolStream(
        join([protocol.serialize.parse({ name, text: sql }), protocol.serialize.describe({ type: 'S', name }), sync]),
        { syncToFs: false },
      );
    } catch (error) {
      throw withQuery(error, sql);
    }
    const description = messages.find((message) => message.name === 'parameterDescription') as { dataTypeIDs?: number[] } | undefined;
    const statement = { name, paramTypes: description?.dataTypeIDs ?? [] };
    this.prepared.set(sql, statement);
    if (this.prepared.size > this.capacity) {
      const [oldest, evicted] = this.prepared.entries().next().value as [string, Prepared];
      this.prepared.delete(oldest);
      await this.close(evicted.name);
    }
    return statement;
  }

  private async close(name: string): Promise<void> {
    await this.pglite.execProtocolStream(join([protocol.serialize.close({ type: 'S', name }), sync]), { syncToFs: false });
  }

  private serialize(value: unknown, type: number | undefined): string | null {
    if (value === null || value === undefined) return null;
    const serializer = type === undefined ? undefined : this.pglite.serializers[type];
    return serializer ? serializer(value) : String(value);
  }
}

interface Prepared {
  name: string;
  /** The parameters' type OIDs, as the server inferred them. */
  paramTypes: number[];
}

const describePortal = protocol.serialize.describe({ type: 'P' });
const executeAll = protocol.serialize.execute({});
const sync = protocol.serialize.sync();

function join(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const message = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    message.set(part, offset);
    offset += part.length;
  }
  return message;
}

function isStalePlan(error: unknown): boolean {
  return (error as { code?: unknown })?.code === '0A000' && /cached plan must not change result type/.test(String((error as Error).message));
}

/** Names the statement on the error, as `PGlite.query`'s errors do. */
function withQuery(error: unknown, sql: string): unknown {
  if (error && typeof error === 'object' && !('query' in error)) Object.assign(error, { query: sql });
  return error;
}
