import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AssistantProfile } from '../assistant/profile.js';
import type { EmbeddingModel } from '../providers/embedding-model.js';
import { isAbortError } from '../providers/provider-error.js';
import type { KnowledgeRepository, StoredChunk } from './knowledge-repository.js';
import { chunkText, markdownChunks } from './markdown-chunks.js';

/** A chunk found for a question, best first. */
export interface KnowledgeHit {
  source: string;
  heading: string;
  content: string;
  score: number;
}

/** How one profile's knowledge was loaded at start-up. */
export interface KnowledgeLoadReport {
  profileId: string;
  chunks: number;
  characters: number;
  added: number;
  removed: number;
  /** Chunks whose embedding was computed now (new or changed text). */
  embedded: number;
  /** `prompt`: small enough to go into the prompt whole; otherwise how it is searched. */
  use: 'prompt' | 'embeddings' | 'full-text';
  /** Sources the profile names that do not exist (left out, and logged). */
  missing: string[];
}

export interface KnowledgeBaseOptions {
  repository: KnowledgeRepository;
  /** Absent: full-text search only. */
  embeddingModel?: EmbeddingModel;
  /** e.g. `text-embedding-3-small`. */
  embeddingModelName?: string;
  logger: Logger;
  /** Longest wait for a question's embedding before full-text search answers instead. */
  queryTimeoutMs?: number;
}

interface LoadedKnowledge {
  profile: AssistantProfile;
  searchConfig: string;
  /** The whole knowledge as text, when it fits in the prompt. */
  wholeText?: string;
  /** Unit-length vectors, when embeddings are in use. */
  index?: Array<StoredChunk & { vector: Float32Array }>;
}

/** Texts per embeddings request at start-up. */
const embeddingBatchSize = 128;
const defaultQueryTimeoutMs = 1_500;

/**
 * PostgreSQL's text search configuration for a profile's language: its
 * stemmer and stop words (PGlite ships the same ones). `simple` for the rest.
 */
const searchConfigs: Record<string, string> = {
  en: 'english', ru: 'russian', ro: 'romanian', de: 'german', fr: 'french', es: 'spanish', it: 'italian', pt: 'portuguese',
  nl: 'dutch', sv: 'swedish', da: 'danish', fi: 'finnish', hu: 'hungarian', tr: 'turkish', el: 'greek', lt: 'lithuanian',
};

/**
 * Each profile's knowledge sources (Markdown files), loaded at start-up:
 * chunked, stored, embedded when an embedding model is configured (only
 * chunks whose text changed since the last start), and searched per turn by
 * cosine similarity, or by PostgreSQL full-text search without embeddings.
 */
export class KnowledgeBase {
  private readonly loaded = new Map<string, LoadedKnowledge>();

  constructor(private readonly options: KnowledgeBaseOptions) {}

  /**
   * Reads, chunks, stores and embeds every profile's sources. A missing
   * source is logged and left out (the assistant then says it does not
   * know); a failed embedding leaves full-text search.
   */
  async load(profiles: AssistantProfile[]): Promise<KnowledgeLoadReport[]> {
    const reports: KnowledgeLoadReport[] = [];
    for (const profile of profiles) {
      if (profile.knowledgeSources.length === 0) continue;
      reports.push(await this.loadProfile(profile));
    }
    return reports;
  }

  /** The profile's whole knowledge when it is small enough for the prompt. */
  wholeText(profileId: string): string | undefined {
    return this.loaded.get(profileId)?.wholeText;
  }

  /** True when the profile has knowledge sources to search. */
  has(profileId: string): boolean {
    return this.loaded.has(profileId);
  }

  /**
   * The chunks that best answer `question`. By embedding when the profile's
   * chunks are embedded and the question's embedding comes in time;
   * otherwise (or when it fails, or `method` is `full-text`) by full-text search.
   */
  async search(
    profileId: string,
    question: string,
    options: { limit: number; abortSignal?: AbortSignal; method?: 'best' | 'full-text' },
  ): Promise<{ hits: KnowledgeHit[]; method: 'embeddings' | 'full-text' }> {
    const knowledge = this.loaded.get(profileId);
    if (!knowledge || !question.trim()) return { hits: [], method: 'full-text' };
    const { embeddingModel, embeddingModelName } = this.options;
    if (options.method !== 'full-text' && knowledge.index?.length && embeddingModel && embeddingModelName) {
      const timeout = AbortSignal.timeout(this.options.queryTimeoutMs ?? defaultQueryTimeoutMs);
      try {
        const { vectors } = await embeddingModel.embed({
          model: embeddingModelName,
          texts: [question],
          abortSignal: options.abortSignal ? AbortSignal.any([options.abortSignal, timeout]) : timeout,
        });
        return { hits: rankBySimilarity(knowledge.index, unit(vectors[0]), options.limit), method: 'embeddings' };
      } catch (error) {
        if (options.abortSignal?.aborted) throw error;
        this.options.logger.warn({ err: isAbortError(error) ? 'timed out' : error, profile: profileId }, 'question embedding failed; searching the knowledge by text');
      }
    }
    const words = searchWords(question);
    const rows = await this.options.repository.searchText(profileId, knowledge.searchConfig, words, options.limit);
    return { hits: rows.map((row) => ({ source: row.source, heading: row.heading, content: row.content, score: row.score })), method: 'full-text' };
  }

  private async loadProfile(profile: AssistantProfile): Promise<KnowledgeLoadReport> {
    const { repository, embeddingModel, embeddingModelName, logger } = this.options;
    const { documents, missing } = await readSources(profile);
    for (const source of missing) logger.error({ profile: profile.id, source }, 'knowledge source does not exist; the profile answers without it');
    const searchConfig = searchConfigs[profile.language.slice(0, 2)] ?? 'simple';
    const chunks = documents.flatMap((document) => markdownChunks(document.name, document.text));
    const stored = chunks.map((chunk, position) => ({
      ...chunk,
      position,
      contentHash: createHash('sha256').update(`${searchConfig}\n${chunk.heading}\n${chunk.content}`).digest('hex'),
    }));
    const { added, removed } = await repository.replaceChunks(profile.id, searchConfig, stored);
    const wholeText = documents.map((document) => document.text.trim()).join('\n\n');
    const fitsPrompt = wholeText.length <= profile.knowledgeRetrieval.promptMaxChars;
    const knowledge: LoadedKnowledge = { profile, searchConfig, wholeText: fitsPrompt ? wholeText : undefined };
    let embedded = 0;
    if (!fitsPrompt && embeddingModel && embeddingModelName) {
      try {
        embedded = await this.embedMissing(profile.id);
        knowledge.index = (await repository.embeddedChunks(profile.id, embeddingModelName)).map((chunk) => ({ ...chunk, vector: unit(chunk.vector) }));
      } catch (error) {
        logger.warn({ err: error, profile: profile.id }, 'could not embed the knowledge; it is searched by text until the next start');
      }
    }
    if (stored.length > 0) this.loaded.set(profile.id, knowledge);
    else this.loaded.delete(profile.id);
    return {
      profileId: profile.id,
      chunks: stored.length,
      characters: wholeText.length,
      added,
      removed,
      embedded,
      use: fitsPrompt ? 'prompt' : knowledge.index?.length ? 'embeddings' : 'full-text',
      missing,
    };
  }

  private async embedMissing(profileId: string): Promise<number> {
    const { repository, embeddingModel, embeddingModelName } = this.options;
    const missing = await repository.chunksWithoutEmbedding(profileId, embeddingModelName!);
    for (let start = 0; start < missing.length; start += embeddingBatchSize) {
      const batch = missing.slice(start, start + embeddingBatchSize);
      const { vectors } = await embeddingModel!.embed({ model: embeddingModelName!, texts: batch.map(chunkText) });
      await repository.saveEmbeddings(embeddingModelName!, batch.map((chunk, index) => ({ chunkId: chunk.chunkId, vector: vectors[index] })));
    }
    return missing.length;
  }
}

/** The Markdown files a profile names: files as given, folders' `*.md` in name order. */
async function readSources(profile: AssistantProfile): Promise<{ documents: Array<{ name: string; text: string }>; missing: string[] }> {
  const files: string[] = [];
  const missing: string[] = [];
  for (const source of profile.knowledgeSources) {
    const info = await stat(source).catch(() => undefined);
    if (!info) {
      missing.push(source);
      continue;
    }
    if (info.isDirectory()) {
      const names = (await readdir(source)).filter((name) => name.endsWith('.md')).sort();
      files.push(...names.map((name) => path.join(source, name)));
    } else files.push(source);
  }
  const documents = await Promise.all(files.map(async (file) => ({ name: path.basename(file), text: await readFile(file, 'utf8') })));
  return { documents, missing };
}

/** Words of a question, for an OR query: letters and digits only, so nothing in them is query syntax. */
function searchWords(question: string): string[] {
  const words = question.toLowerCase().normalize('NFC').match(/[\p{L}\p{N}]+/gu) ?? [];
  return [...new Set(words)].slice(0, 32);
}

function rankBySimilarity(index: Array<StoredChunk & { vector: Float32Array }>, query: Float32Array, limit: number): KnowledgeHit[] {
  const scored = index.map((chunk) => ({ chunk, score: dot(chunk.vector, query) }));
  scored.sort((a, b) => b.score - a.score);
  return scored.slice(0, limit).map(({ chunk, score }) => ({ source: chunk.source, heading: chunk.heading, content: chunk.content, score }));
}

function dot(a: Float32Array, b: Float32Array): number {
  const length = Math.min(a.length, b.length);
  let sum = 0;
  for (let index = 0; index < length; index++) sum += a[index] * b[index];
  return sum;
}

/** Scaled to length 1, so a dot product is the cosine similarity. */
function unit(vector: Float32Array): Float32Array {
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  return norm > 0 ? vector.map((value) => value / norm) : vector;
}
