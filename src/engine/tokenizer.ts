// We build on @huggingface/tokenizers (already a dependency, pure JS, runs in Web Workers and Node) by describing
// CLIP as the tokenizer.json that transformers' CLIP converter writes (NFC + whitespace collapse + lowercase, CLIP's
// split regex, byte-level mapping, BPE with a "</w>" word suffix), so its tested BPE yields exact CLIP ids and this
// file only adds CLIP's fixed-length start/end/padding framing.
//
// Cleanup follows openai/CLIP, HF's fast CLIPTokenizer and transformers v5 (the published ids in our tests come from
// these). transformers v4's slow CLIPTokenizer without ftfy differs only outside ordinary prompts: it drops control
// characters and splits CJK ideographs into separate words; openai/CLIP additionally html-unescapes the prompt.

import { Tokenizer } from '@huggingface/tokenizers';

export interface ClipTokenizerOptions {
  /** Length of every encoding, start and end tokens included (CLIP's context length). */
  maxLength?: number;
  /** Id written after the end token: SD 1.x pads with the end token (default), SD 2.x exports pad with 0. */
  padTokenId?: number;
}

export interface ClipEncoding {
  ids: Int32Array;
  /** True when the prompt had more than maxLength - 2 tokens and the tail was dropped. */
  truncated: boolean;
  /** Number of prompt tokens before truncation, start and end tokens excluded. */
  tokenCount: number;
}

export interface ClipTokenizer {
  encode(text: string): Int32Array;
  encodeDetailed(text: string): ClipEncoding;
}

const START_TOKEN = '<|startoftext|>';
const END_TOKEN = '<|endoftext|>';
const DEFAULT_MAX_LENGTH = 77;

// openai/CLIP simple_tokenizer.py's word pattern, minus the special-token alternatives (the library splits those out
// as added tokens before this runs). The input is already lowercased, so CLIP's IGNORECASE flag changes nothing.
const CLIP_WORD_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/** Merge rules of a merges.txt, one "left right" pair per line, without the "#version" header or blank lines. */
export function parseMerges(merges: string): string[] {
  return merges.split(/\r?\n/).filter((line) => line.trim() !== '' && !line.startsWith('#version'));
}

function requireId(vocab: Record<string, number>, token: string): number {
  const id = vocab[token];
  if (!Number.isInteger(id)) throw new Error(`CLIP vocabulary has no "${token}" entry`);
  return id;
}

export function createClipTokenizer(
  vocab: Record<string, number>,
  merges: string,
  options: ClipTokenizerOptions = {},
): ClipTokenizer {
  const startId = requireId(vocab, START_TOKEN);
  const endId = requireId(vocab, END_TOKEN);
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new RangeError(`maxLength must be an integer >= 2 (room for start and end tokens), got ${maxLength}`);
  }
  const padId = options.padTokenId ?? endId;

  const specialToken = (id: number, content: string) => ({
    id,
    content,
    special: true,
    normalized: false,
    single_word: false,
    lstrip: false,
    rstrip: false,
  });
  const tokenizer = new Tokenizer(
    {
      added_tokens: [specialToken(startId, START_TOKEN), specialToken(endId, END_TOKEN)],
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'NFC' },
          { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
          { type: 'Lowercase' },
        ],
      },
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          // invert: keep the regex matches (the words), drop what lies between them (the spaces).
          { type: 'Split', pattern: { Regex: CLIP_WORD_PATTERN }, behavior: 'Removed', invert: true },
          { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
        ],
      },
      model: {
        type: 'BPE',
        vocab,
        merges: parseMerges(merges),
        continuing_subword_prefix: '',
        end_of_word_suffix: '</w>',
        // CLIPTokenizer's default; never reached with a real CLIP vocabulary, which holds every byte symbol.
        unk_token: END_TOKEN,
      },
      // Framing (start/end/padding) is done below so that truncation can keep the end token.
      post_processor: null,
      decoder: null,
    },
    {},
  );

  function encodeDetailed(text: string): ClipEncoding {
    const textIds = tokenizer.encode(text, { add_special_tokens: false }).ids;
    const room = maxLength - 2;
    const kept = Math.min(textIds.length, room);
    const ids = new Int32Array(maxLength).fill(padId);
    ids[0] = startId;
    for (let i = 0; i < kept; i++) ids[i + 1] = textIds[i];
    ids[kept + 1] = endId;
    return { ids, truncated: textIds.length > room, tokenCount: textIds.length };
  }

  return {
    encode: (text) => encodeDetailed(text).ids,
    encodeDetailed,
  };
}
