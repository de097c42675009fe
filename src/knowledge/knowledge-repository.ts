import type { Database } from '../storage/database.js';

/** A chunk as stored, ready to be searched or quoted. */
export interface StoredChunk {
  chunkId: number;
  source: string;
  heading: string;
  content: string;
}

/** A chunk to store: its place in the profile's knowledge and the hash of its text. */
export interface ChunkToStore {
  source: string;
  position: number;
  heading: string;
  content: string;
  contentHash: string;
}

/** Every SQL statement about knowledge chunks. */
export class KnowledgeRepository {
  constructor(private readonly db: Database) {}

  /**
   * Makes the profile's stored chunks exactly `chunks`: chunks whose hash is
   * gone are deleted, new ones inserted (without an embedding), kept ones
   * only re-ordered when they moved, so their embeddings survive and an
   * unchanged knowledge costs two reads at start-up.
   */
  async replaceChunks(profileId: string, searchConfig: string, chunks: ChunkToStore[]): Promise<{ added: number; removed: number }> {
    return this.db.transaction(async (tx) => {
      const removed = await tx.query<{ chunk_id: number }>(
        'DELETE FROM knowledge_chunks WHERE profile_id = $1 AND NOT (content_hash = ANY($2::text[])) RETURNING chunk_id',
        [profileId, chunks.map((chunk) => chunk.contentHash)],
      );
      const { rows: kept } = await tx.query<{ content_hash: string; position: number; source: string }>(
        'SELECT content_hash, position, source FROM knowledge_chunks WHERE profile_id = $1',
        [profileId],
      );
      const stored = new Map(kept.map((row) => [row.content_hash, row]));
      const added = chunks.filter((chunk) => !stored.has(chunk.contentHash));
      const moved = chunks.filter((chunk) => {
        const row = stored.get(chunk.contentHash);
        return row !== undefined && (row.position !== chunk.position || row.source !== chunk.source);
      });
      // One statement for all new chunks: a menu of a few hundred items is stored in one round trip.
      if (added.length > 0) {
        await tx.query(
          `INSERT INTO knowledge_chunks (profile_id, source, position, heading, content, content_hash, search_config, tsv)
           SELECT $1, c.source, c.position, c.heading, c.content, c.content_hash, $2::text,
                  to_tsvector($2::text::regconfig, c.heading || ' ' || c.content)
             FROM unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[]) AS c(source, position, heading, content, content_hash)
           ON CONFLICT (profile_id, content_hash) DO NOTHING`,
          [
            profileId,
            searchConfig,
            added.map((chunk) => chunk.source),
            added.map((chunk) => chunk.position),
            added.map((chunk) => chunk.heading),
            added.map((chunk) => chunk.content),
            added.map((chunk) => chunk.contentHash),
          ],
        );
      }
      if (moved.length > 0) {
        await tx.query(
          `UPDATE knowledge_chunks SET position = m.position, source = m.source
             FROM unnest($2::text[], $3::int[], $4::text[]) AS m(content_hash, position, source)
            WHERE knowledge_chunks.profile_id = $1 AND knowledge_chunks.content_hash = m.content_hash`,
          [profileId, moved.map((chunk) => chunk.contentHash), moved.map((chunk) => chunk.position), moved.map((chunk) => chunk.source)],
        );
      }
      return { added: added.length, removed: removed.rows.length };
    });
  }

  /** Chunks with no embedding from `model` (new, or embedded by another model). */
  async chunksWithoutEmbedding(profileId: string, model: string): Promise<StoredChunk[]> {
    const { rows } = await this.db.query<ChunkRow>(
      `SELECT chunk_id, source, heading, content FROM knowledge_chunks
        WHERE profile_id = $1 AND (embedding IS NULL OR embedding_model IS DISTINCT FROM $2) ORDER BY position`,
      [profileId, model],
    );
    return rows.map(toChunk);
  }

  async saveEmbeddings(model: string, embeddings: Array<{ chunkId: number; vector: Float32Array }>): Promise<void> {
    if (embeddings.length === 0) return;
    await this.db.query(
      `UPDATE knowledge_chunks SET embedding = e.embedding, embedding_model = $1
         FROM unnest($2::bigint[], $3::text[]) AS e(chunk_id, embedding) WHERE knowledge_chunks.chunk_id = e.chunk_id`,
      [model, embeddings.map((item) => item.chunkId), embeddings.map((item) => Buffer.from(item.vector.buffer, item.vector.byteOffset, item.vector.byteLength).toString('base64'))],
    );
  }

  /** Every chunk of the profile with its embedding from `model`, in knowledge order. */
  async embeddedChunks(profileId: string, model: string): Promise<Array<StoredChunk & { vector: Float32Array }>> {
    const { rows } = await this.db.query<ChunkRow & { embedding: string }>(
      `SELECT chunk_id, source, heading, content, embedding FROM knowledge_chunks
        WHERE profile_id = $1 AND embedding_model = $2 AND embedding IS NOT NULL ORDER BY position`,
      [profileId, model],
    );
    return rows.map((row) => ({ ...toChunk(row), vector: toVector(row.embedding) }));
  }

  /**
   * Full-text search: chunks matching any of `words` (stemmed by the
   * profile's text search configuration), best first.
   */
  async searchText(profileId: string, searchConfig: string, words: string[], limit: number): Promise<Array<StoredChunk & { score: number }>> {
    if (words.length === 0) return [];
    const { rows } = await this.db.query<ChunkRow & { score: number }>(
      `SELECT chunk_id, source, heading, content, ts_rank(tsv, query, 1)::float8 AS score
         FROM knowledge_chunks, to_tsquery($2::text::regconfig, $3) AS query
        WHERE profile_id = $1 AND tsv @@ query
        ORDER BY score DESC, position
        LIMIT $4`,
      [profileId, searchConfig, words.join(' | '), limit],
    );
    return rows.map((row) => ({ ...toChunk(row), score: Number(row.score) }));
  }

  async countChunks(profileId: string): Promise<number> {
    const { rows } = await this.db.query<{ count: number }>('SELECT count(*)::int AS count FROM knowledge_chunks WHERE profile_id = $1', [profileId]);
    return rows[0]?.count ?? 0;
  }
}

interface ChunkRow {
  chunk_id: number | string;
  source: string;
  heading: string;
  content: string;
}

function toChunk(row: ChunkRow): StoredChunk {
  return { chunkId: Number(row.chunk_id), source: row.source, heading: row.heading, content: row.content };
}

/** Copied out of the decoded buffer, which is not always aligned for a Float32Array view. */
function toVector(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer, 0, Math.floor(bytes.byteLength / 4));
}
