/**
 * SLIP/clip-rocket's YFCC caption cleaning (make_dataset.py): `unquote_plus` (`+` → space,
 * %XX decoded as UTF-8, invalid sequences replaced as Python's errors='replace' does), then
 * `<a ...>`, `</a>`, `<b>`, `</b>`, `<i>`, `</i>` tags and URLs (`http\S+`, `www\S+`) removed.
 */
const HTML = /<a.*?>|<\/a>|<b>|<\/b>|<i>|<\/i>/g;
const URLS = /http\S+|www\S+/g;
const lenient = new TextDecoder('utf-8');

export function unquotePlus(s: string): string {
  return s.replace(/\+/g, ' ').replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(3 * i + 1, 3 * i + 3), 16);
    return lenient.decode(bytes);
  });
}

export function cleanYfccCaption(s: string): string {
  return unquotePlus(s).replace(HTML, '').replace(URLS, '');
}

/** clip-rocket's candidates: the non-empty of [title, desc], or [''] when both are empty. */
export function yfccCandidates(title: string, desc: string): string[] {
  const c = [cleanYfccCaption(title), cleanYfccCaption(desc)].filter((x) => x.length > 0);
  return c.length > 0 ? c : [''];
}
