/**
 * A tiny CLIP-format BPE vocabulary: CLIP's 256 byte symbols, the same with "</w>", merges that
 * make each word of a fixed prompt-word list one token, then <|startoftext|>, <|endoftext|> as the
 * last two ids (the layout of openai/CLIP's 49408-entry vocabulary, just with fewer merges).
 * Every text still tokenizes, into byte symbols where no merge applies, so the text embedding
 * stays tiny (a few hundred rows instead of 49408).
 */

export const START_TOKEN = '<|startoftext|>';
export const END_TOKEN = '<|endoftext|>';
export const MAX_LENGTH = 77;

export const PROMPT_WORDS: readonly string[] = [
  'a', 'an', 'the', 'of', 'on', 'in', 'at', 'with', 'and', 'by',
  'cat', 'dog', 'horse', 'bird', 'man', 'woman', 'astronaut',
  'photo', 'painting', 'portrait', 'landscape', 'drawing', 'sketch', 'art', 'style',
  'sitting', 'riding', 'standing', 'bench', 'table', 'house', 'city', 'street',
  'mountain', 'mountains', 'forest', 'river', 'lake', 'beach', 'sea', 'sky', 'sun', 'sunset', 'tree', 'flower',
  'red', 'blue', 'green', 'yellow', 'white', 'black',
  'oil', 'digital', 'beautiful', 'detailed', 'high', 'quality',
];

/** openai/CLIP's bytes_to_unicode, in its order: printable bytes first, then the rest from U+0100. */
export function bytesToUnicode(): Map<number, string> {
  const printable: number[] = [];
  const ranges: Array<[number, number]> = [
    [0x21, 0x7e],
    [0xa1, 0xac],
    [0xae, 0xff],
  ];
  for (const [lo, hi] of ranges) for (let c = lo; c <= hi; c++) printable.push(c);
  const map = new Map<number, string>();
  for (const byte of printable) map.set(byte, String.fromCodePoint(byte));
  let extra = 0;
  for (let byte = 0; byte < 256; byte++) {
    if (!map.has(byte)) map.set(byte, String.fromCodePoint(256 + extra++));
  }
  return map;
}

/** A word as CLIP's BPE starts it: one symbol per UTF-8 byte, "</w>" on the last. */
export function wordSymbols(word: string, byteMap: Map<number, string> = bytesToUnicode()): string[] {
  const symbols = [...new TextEncoder().encode(word)].map((byte) => byteMap.get(byte) ?? '');
  symbols[symbols.length - 1] += '</w>';
  return symbols;
}

/** CLIP's bpe(): repeatedly merge the lowest-ranked adjacent pair (all its occurrences, left to right). */
export function bpe(symbols: string[], ranks: Map<string, number>): string[] {
  let word = [...symbols];
  for (;;) {
    let best: string | undefined;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < word.length; i++) {
      const rank = ranks.get(`${word[i]} ${word[i + 1]}`);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = `${word[i]} ${word[i + 1]}`;
      }
    }
    if (best === undefined) return word;
    const [left, right] = best.split(' ');
    const next: string[] = [];
    for (let i = 0; i < word.length; i++) {
      if (i + 1 < word.length && word[i] === left && word[i + 1] === right) {
        next.push(left + right);
        i++;
      } else next.push(word[i]);
    }
    word = next;
  }
}

/**
 * Learns merges the way BPE training does (most frequent adjacent pair first, ties by first
 * appearance), until every word is a single symbol. Training-order merges reproduce the training
 * segmentation when applied by rank, which is what makes each word exactly one token.
 */
export function learnMerges(words: readonly string[], byteMap: Map<number, string>): Array<[string, string]> {
  const segs = words.map((w) => wordSymbols(w, byteMap));
  const merges: Array<[string, string]> = [];
  for (;;) {
    const counts = new Map<string, number>();
    for (const seg of segs) {
      for (let i = 0; i + 1 < seg.length; i++) {
        const key = `${seg[i]} ${seg[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    if (counts.size === 0) return merges;
    let best = '';
    let bestCount = 0;
    for (const [key, count] of counts) {
      if (count > bestCount) {
        best = key;
        bestCount = count;
      }
    }
    const [left, right] = best.split(' ');
    merges.push([left, right]);
    for (let s = 0; s < segs.length; s++) {
      const seg = segs[s];
      const next: string[] = [];
      for (let i = 0; i < seg.length; i++) {
        if (i + 1 < seg.length && seg[i] === left && seg[i + 1] === right) {
          next.push(left + right);
          i++;
        } else next.push(seg[i]);
      }
      segs[s] = next;
    }
  }
}

export interface TinyTokenizerFiles {
  vocab: Record<string, number>;
  merges: Array<[string, string]>;
  vocabSize: number;
  startId: number;
  endId: number;
}

export function buildTinyTokenizer(words: readonly string[] = PROMPT_WORDS): TinyTokenizerFiles {
  const byteMap = bytesToUnicode();
  const symbols = [...byteMap.values()];
  const merges = learnMerges(words, byteMap);
  const entries = [...symbols, ...symbols.map((s) => `${s}</w>`), ...merges.map(([l, r]) => l + r), START_TOKEN, END_TOKEN];
  const vocab: Record<string, number> = {};
  entries.forEach((token, id) => {
    if (token in vocab) throw new Error(`duplicate vocabulary entry ${token}`);
    vocab[token] = id;
  });
  return { vocab, merges, vocabSize: entries.length, startId: vocab[START_TOKEN], endId: vocab[END_TOKEN] };
}

export function mergesText(merges: Array<[string, string]>): string {
  return ['#version: 0.2', ...merges.map(([l, r]) => `${l} ${r}`)].join('\n') + '\n';
}

export function tokenizerConfig(): Record<string, unknown> {
  // The fields of SD 1.5's tokenizer/tokenizer_config.json that matter to a CLIPTokenizer.
  return {
    add_prefix_space: false,
    bos_token: START_TOKEN,
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    eos_token: END_TOKEN,
    errors: 'replace',
    model_max_length: MAX_LENGTH,
    pad_token: END_TOKEN,
    tokenizer_class: 'CLIPTokenizer',
    unk_token: END_TOKEN,
  };
}

export function specialTokensMap(): Record<string, string> {
  return { bos_token: START_TOKEN, eos_token: END_TOKEN, pad_token: END_TOKEN, unk_token: END_TOKEN };
}
