import { describe, expect, it } from 'vitest';
import { chunkText, markdownChunks } from './markdown-chunks.js';

describe('markdownChunks', () => {
  it('makes each list item a chunk under its heading path, and running text one chunk per section', () => {
    const chunks = markdownChunks('menu.md', [
      '# Menu',
      'Prices in euros. Ask about allergens.',
      '',
      '## Pasta',
      '- **Tagliatelle al tartufo** — egg tagliatelle, butter,',
      '  shaved black truffle. 24',
      '- *Carbonara* — guanciale, egg yolk, pecorino. 15',
      '',
      '## Desserts',
      '1. Tiramisu — 8',
      '',
      '```',
      'kept as text',
      '```',
    ].join('\n'));
    expect(chunks).toEqual([
      { source: 'menu.md', heading: 'Menu', content: 'Prices in euros. Ask about allergens.' },
      { source: 'menu.md', heading: 'Menu › Pasta', content: 'Tagliatelle al tartufo — egg tagliatelle, butter, shaved black truffle. 24' },
      { source: 'menu.md', heading: 'Menu › Pasta', content: 'Carbonara — guanciale, egg yolk, pecorino. 15' },
      { source: 'menu.md', heading: 'Menu › Desserts', content: 'Tiramisu — 8' },
      { source: 'menu.md', heading: 'Menu › Desserts', content: 'kept as text' },
    ]);
    expect(chunkText(chunks[3])).toBe('Menu › Desserts: Tiramisu — 8');
  });

  it('splits long running text at paragraphs, strips links, and drops duplicates and empty sections', () => {
    const paragraph = (word: string) => `${word} `.repeat(100).trim();
    const chunks = markdownChunks('policies.md', [
      '# Policies', '', paragraph('alpha'), '', paragraph('beta'), '', paragraph('gamma'), '',
      '## Contact', 'Write to [events](mailto:events@example.com).', '', '## Contact', 'Write to [events](mailto:events@example.com).', '## Empty',
    ].join('\n'));
    expect(chunks.map((chunk) => [chunk.heading, chunk.content.slice(0, 5)])).toEqual([
      ['Policies', 'alpha'], ['Policies', 'gamma'], ['Policies › Contact', 'Write'],
    ]);
    expect(chunks[0].content).toContain('\nbeta');
    expect(chunks[2].content).toBe('Write to events.');
  });
});
