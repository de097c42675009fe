import { describe, expect, it } from 'vitest';
import { escapeHtml, html, jsonScript } from './html.js';

describe('html', () => {
  it('escapes what it is given and keeps its own markup', () => {
    const said = '<script>alert("hi")</script> & \'more\'';
    expect(html`<p>${said}</p>`.value).toBe('<p>&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt; &amp; &#39;more&#39;</p>');
    expect(html`<ul>${['a', 'b<'].map((item) => html`<li>${item}</li>`)}</ul>`.value).toBe('<ul><li>a</li><li>b&lt;</li></ul>');
    expect(html`${null}${undefined}${false}${0}`.value).toBe('0');
  });

  it('embeds data that cannot break out of its script element', () => {
    const script = jsonScript('data', { text: '</script><script>alert(1)</script>' }).value;
    expect(script).not.toContain('</script><script>');
    expect(JSON.parse(script.replace(/^<script[^>]*>/, '').replace(/<\/script>$/, ''))).toEqual({ text: '</script><script>alert(1)</script>' });
  });

  it('escapeHtml covers quotes for attributes', () => {
    expect(escapeHtml('" onmouseover="x')).toBe('&quot; onmouseover=&quot;x');
  });
});
