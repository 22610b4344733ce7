import type { ItemResult } from './batcher.js';
import type { WdsSample } from './wdsSamples.js';

/** Which members make a sample's image and caption (open_clip's `--image_key`/`--text_key`). */
export interface WdsKeys {
  /** Image extensions, first present wins (`jpg;png;jpeg;webp`). */
  image: string[];
  /** Caption extension (`txt`; `json` with `jsonText`). */
  text: string;
  /** A field of the `text` member parsed as JSON (`--json_text_key`; dots reach into objects). */
  jsonText?: string;
}

export const DEFAULT_WDS_KEYS: WdsKeys = { image: ['jpg', 'png', 'jpeg', 'webp'], text: 'txt' };

/** `"jpg;png"` → ["jpg", "png"] (lower-cased, as webdataset lower-cases extensions). */
export function parseKeyList(spec: string): string[] {
  return spec
    .split(';')
    .map((k) => k.trim().toLowerCase())
    .filter((k) => k.length > 0);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A grouped sample as the loader's item, as open_clip HEAD filters it: the first image key
 * present and the text key must both be there (else "incomplete", counted silently as
 * open_clip's filter does), the caption must be UTF-8 and non-empty (else "corrupt"/"incomplete").
 * A JSON caption field may hold a string or a list of strings (one is drawn per sample).
 */
export function wdsItem(s: WdsSample, keys: WdsKeys): ItemResult {
  const what = `${s.__url__}#${s.__key__}`;
  const imageKey = keys.image.find((k) => s.files.has(k));
  const textBytes = s.files.get(keys.text);
  if (imageKey === undefined || textBytes === undefined) {
    return { ok: false, kind: 'incomplete', what, why: `no ${imageKey === undefined ? `image member (${keys.image.join(';')})` : `.${keys.text} member`}` };
  }
  let text: string;
  try {
    text = utf8.decode(textBytes);
  } catch {
    return { ok: false, kind: 'corrupt', what, why: `.${keys.text} is not UTF-8` };
  }
  let captions: string[];
  if (keys.jsonText !== undefined) {
    let v: unknown;
    try {
      v = JSON.parse(text);
      for (const part of keys.jsonText.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
    } catch {
      return { ok: false, kind: 'corrupt', what, why: `.${keys.text} is not JSON` };
    }
    if (typeof v === 'string') captions = [v];
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) captions = v as string[];
    else return { ok: false, kind: 'incomplete', what, why: `.${keys.text} has no string field ${JSON.stringify(keys.jsonText)}` };
  } else {
    captions = [text];
  }
  captions = captions.map((c) => c.trim()).filter((c) => c.length > 0);
  if (captions.length === 0) return { ok: false, kind: 'incomplete', what, why: 'empty caption' };
  return { ok: true, item: { key: s.__key__, url: s.__url__, image: s.files.get(imageKey)!, captions } };
}
