/** Tiny tokenizer.json files written by hand: a BERT-style WordPiece and a RoBERTa-style byte-level BPE. */

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

// A BERT-style WordPiece tokenizer.json: ids are the positions in this list.
const WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'photo', 'of', 'cat', 'dog', 'the', '##s', 'play', '##ing', '!', '.'];
export const WORDPIECE_JSON = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: WORDS.slice(0, 5).map((w, i) => special(i, w)),
  normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])) },
};

// A RoBERTa-style byte-level BPE tokenizer.json.
const BPE_VOCAB = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3, a: 4, c: 5, t: 6, 'Ġ': 7, 'Ġc': 8, at: 9, 'Ġcat': 10, 'Ġa': 11, o: 12, d: 13, g: 14, 'Ġd': 15, og: 16, 'Ġdog': 17 };
export const BPE_JSON = {
  version: '1.0',
  added_tokens: ['<s>', '<pad>', '</s>', '<unk>'].map((w, i) => special(i, w)),
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: false },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab: BPE_VOCAB, merges: ['Ġ c', 'a t', 'Ġc at', 'Ġ a', 'Ġ d', 'o g', 'Ġd og'] },
};

