/**
 * Cuts a streamed reply into pieces worth synthesizing on their own. The first
 * piece is cut early, at a clause, because the caller waits for it; later
 * pieces are whole sentences, which sound more natural and cost fewer requests.
 */
export interface SpeechChunkerOptions {
  /** The first piece may end at a comma once it has this many characters. */
  firstPieceMinChars?: number;
  /** Later pieces end at sentence ends once they have this many characters. */
  minChars?: number;
  /** A piece is cut at the last space once it reaches this length, punctuation or not. */
  maxChars?: number;
}

const sentenceEnd = /[.!?…。！？]["')\]]?\s/g;
const clauseEnd = /[,;:—–]\s/g;

export class SpeechChunker {
  private buffer = '';
  private piecesOut = 0;
  private readonly firstPieceMinChars: number;
  private readonly minChars: number;
  private readonly maxChars: number;

  constructor(options: SpeechChunkerOptions = {}) {
    this.firstPieceMinChars = options.firstPieceMinChars ?? 24;
    this.minChars = options.minChars ?? 60;
    this.maxChars = options.maxChars ?? 300;
  }

  /** Adds streamed text; returns the pieces that became complete. */
  push(text: string): string[] {
    this.buffer += text;
    const pieces: string[] = [];
    for (let piece = this.take(); piece !== undefined; piece = this.take()) pieces.push(piece);
    return pieces;
  }

  /** The rest, at the end of the stream. */
  flush(): string[] {
    const rest = normalize(this.buffer);
    this.buffer = '';
    if (!rest) return [];
    this.piecesOut += 1;
    return [rest];
  }

  private take(): string | undefined {
    const first = this.piecesOut === 0;
    const cut =
      lastMatchEnd(sentenceEnd, this.buffer, first ? 2 : this.minChars) ??
      (first ? lastMatchEnd(clauseEnd, this.buffer, this.firstPieceMinChars) : undefined) ??
      (this.buffer.length >= this.maxChars ? lastSpace(this.buffer, this.maxChars) : undefined);
    if (cut === undefined) return undefined;
    const piece = normalize(this.buffer.slice(0, cut));
    this.buffer = this.buffer.slice(cut);
    if (!piece) return undefined;
    this.piecesOut += 1;
    return piece;
  }
}

/** End of the first boundary at or past `minLength` (the earliest cut that is long enough). */
function lastMatchEnd(pattern: RegExp, text: string, minLength: number): number | undefined {
  pattern.lastIndex = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    const end = match.index + match[0].length;
    if (end >= minLength) return end;
  }
  return undefined;
}

function lastSpace(text: string, limit: number): number {
  const space = text.lastIndexOf(' ', limit);
  return space > 0 ? space + 1 : limit;
}

function normalize(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
