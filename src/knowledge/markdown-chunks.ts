/** One retrievable piece of a knowledge source: a menu item, a paragraph about parking. */
export interface KnowledgeChunk {
  /** The file it came from, as named in the profile. */
  source: string;
  /** The headings above it, outermost first, joined with " › " (e.g. "Menu › Pasta"). */
  heading: string;
  /** Plain text: Markdown emphasis, links and list markers removed. */
  content: string;
}

/** A section's running text is split near this length, at a paragraph. */
const maxParagraphChunkChars = 1_200;

/**
 * Cuts a Markdown document into chunks a caller's question can match: every
 * list item (a dish, a price, a rule) is its own chunk, and a section's
 * running text is one chunk (split at paragraphs when long). Each chunk
 * carries its heading path, so "Tiramisu — 8" is still known to be a dessert
 * when read alone.
 */
export function markdownChunks(source: string, markdown: string): KnowledgeChunk[] {
  const chunks: KnowledgeChunk[] = [];
  const headings: string[] = [];
  let paragraphs: string[] = [];
  let paragraph: string[] = [];
  let item: string[] | undefined;

  const heading = () => headings.filter(Boolean).join(' › ');
  const endParagraph = () => {
    if (paragraph.length) paragraphs.push(paragraph.join(' '));
    paragraph = [];
  };
  const endItem = () => {
    if (item) chunks.push({ source, heading: heading(), content: plain(item.join(' ')) });
    item = undefined;
  };
  const endSection = () => {
    endItem();
    endParagraph();
    let text = '';
    for (const next of paragraphs.map(plain).filter(Boolean)) {
      if (text && text.length + next.length > maxParagraphChunkChars) {
        chunks.push({ source, heading: heading(), content: text });
        text = '';
      }
      text = text ? `${text}\n${next}` : next;
    }
    if (text) chunks.push({ source, heading: heading(), content: text });
    paragraphs = [];
  };

  let fenced = false;
  for (const rawLine of markdown.replace(/\r\n?/g, '\n').split('\n')) {
    const line = rawLine.trimEnd();
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (fenced) {
      if (line.trim()) paragraph.push(line.trim());
      continue;
    }
    const title = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (title) {
      endSection();
      const depth = title[1].length;
      headings.length = depth;
      headings[depth - 1] = plain(title[2]);
      continue;
    }
    const listed = /^\s{0,3}(?:[-*+]|\d{1,3}[.)])\s+(.*)$/.exec(line);
    if (listed) {
      endItem();
      endParagraph();
      item = [listed[1]];
      continue;
    }
    if (!line.trim()) {
      endItem();
      endParagraph();
      continue;
    }
    if (/^\s*(\|?\s*:?-{3,}:?\s*)+\|?\s*$/.test(line) || /^\s*([-*_]\s*){3,}$/.test(line)) continue;
    // An indented line continues the list item above it; anything else is running text.
    if (item && /^\s+/.test(rawLine)) item.push(line.trim());
    else {
      endItem();
      paragraph.push(line.trim());
    }
  }
  endSection();

  const seen = new Set<string>();
  return chunks.filter((chunk) => {
    const key = `${chunk.heading}\n${chunk.content}`;
    if (!chunk.content || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The text a chunk is searched and quoted by: its heading path, then its content. */
export function chunkText(chunk: Pick<KnowledgeChunk, 'heading' | 'content'>): string {
  return chunk.heading ? `${chunk.heading}: ${chunk.content}` : chunk.content;
}

/** Markdown inline syntax to plain words: what a voice can read and a search can match. */
function plain(text: string): string {
  return text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/(^|[\s(])[*_]([^*_\s][^*_]*?)[*_](?=[\s).,;:!?]|$)/g, '$1$2')
    .replace(/^\|\s*|\s*\|$/g, '')
    .replace(/\s*\|\s*/g, ' · ')
    .replace(/\s+/g, ' ')
    .trim();
}
