/**
 * Image-level labelled photo sets for the violation eval: folders of positives and negatives, or a
 * labels CSV (one row per image, e.g. `file,video,has_hat`) whose rows are filtered by column
 * values (`--where video=kitchenB`) and split into positives by one (`--positive-when has_hat=0`).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isImageFile } from '../detect/image.js';

export interface LabelledImage {
  /** Path of the image file. */
  file: string;
  /** The photo shows the violation. */
  positive: boolean;
  /** The folder or CSV it was listed in. */
  source: string;
}

/** The image files of a folder (not recursive, sorted); `flag` names the option in errors. */
export function folderImages(dir: string, flag: string): string[] {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new Error(`${flag} ${dir}: no such folder`);
  }
  if (!st.isDirectory()) throw new Error(`${flag} ${dir}: not a folder`);
  const files = readdirSync(dir).filter(isImageFile).sort();
  if (files.length === 0) throw new Error(`${flag} ${dir}: no images in this folder`);
  return files.map((f) => path.join(dir, f));
}

/** Every image of the positive and the negative folders. */
export function imagesFromFolders(positives: readonly string[], negatives: readonly string[]): LabelledImage[] {
  return [
    ...positives.flatMap((d) => folderImages(d, '--positives').map((file) => ({ file, positive: true, source: d }))),
    ...negatives.flatMap((d) => folderImages(d, '--negatives').map((file) => ({ file, positive: false, source: d }))),
  ];
}

export interface Csv {
  header: string[];
  /** Data rows with their 1-based line number in the file. */
  rows: { line: number; fields: string[] }[];
}

/**
 * RFC 4180 CSV: comma-separated, fields optionally in double quotes ("" for a quote, commas and
 * newlines allowed inside), LF or CRLF, a UTF-8 BOM ignored, blank lines skipped. The first row is
 * the header; every row must have as many fields as the header.
 */
export function parseCsv(text: string, file: string): Csv {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let blank = true;
  const endRecord = () => {
    fields.push(field);
    if (!(blank && fields.length === 1 && field === '')) records.push({ line: start, fields });
    fields = [];
    field = '';
    blank = true;
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"') {
      if (field !== '') throw new Error(`${file}:${line}: a quote inside an unquoted field`);
      quoted = true;
      blank = false;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      blank = false;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else {
      field += c;
      blank = false;
    }
  }
  if (quoted) throw new Error(`${file}:${start}: unterminated quoted field`);
  endRecord();
  const [head, ...rows] = records;
  if (!head) throw new Error(`${file}: empty CSV (no header row)`);
  const header = head.fields.map((h) => h.trim());
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) throw new Error(`${file}: column "${dup}" appears twice in the header`);
  for (const r of rows) if (r.fields.length !== header.length) throw new Error(`${file}:${r.line}: ${r.fields.length} fields, the header has ${header.length} (${header.join(', ')})`);
  return { header, rows };
}

export interface ColumnTest {
  column: string;
  value: string;
}

/** "video=kitchenB" → { column: 'video', value: 'kitchenB' }. */
export function parseColumnTest(spec: string, flag: string): ColumnTest {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`${flag}: expected COLUMN=VALUE, got "${spec}"`);
  return { column: spec.slice(0, eq).trim(), value: spec.slice(eq + 1).trim() };
}

export interface LabelsCsvOptions {
  /** Rows whose column has this value are positives, the others negatives. */
  positiveWhen: ColumnTest;
  /** Keep only rows matching every test (columns of the CSV). */
  where?: readonly ColumnTest[];
  /** Column naming the image (default "file"). */
  fileColumn?: string;
}

const distinct = (vs: string[]) => [...new Set(vs)].sort();
const listValues = (vs: string[]) => {
  const d = distinct(vs);
  return d.length > 12 ? `${d.slice(0, 12).join(', ')}, ... (${d.length} values)` : d.join(', ');
};

/**
 * A labels CSV: images resolve against the CSV's folder, or its images/ subfolder when not found
 * there (absolute paths as written). Errors name the file, the line, the column and the value.
 */
export function readLabelsCsv(csvFile: string, opts: LabelsCsvOptions): LabelledImage[] {
  let text: string;
  try {
    text = readFileSync(csvFile, 'utf8');
  } catch (err) {
    throw new Error(`--labels ${csvFile}: cannot read file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const csv = parseCsv(text, csvFile);
  const col = (name: string, flag: string): number => {
    const i = csv.header.indexOf(name);
    if (i < 0) throw new Error(`${csvFile}: no column "${name}" (named by ${flag}; columns: ${csv.header.join(', ')})`);
    return i;
  };
  const fileCol = col(opts.fileColumn ?? 'file', 'the image column');
  const posCol = col(opts.positiveWhen.column, '--positive-when');
  const posValues = csv.rows.map((r) => r.fields[posCol]!.trim());
  if (!posValues.includes(opts.positiveWhen.value))
    throw new Error(`${csvFile}: --positive-when ${opts.positiveWhen.column}=${opts.positiveWhen.value}: no row has that value (column "${opts.positiveWhen.column}" has: ${listValues(posValues)})`);
  let rows = csv.rows;
  for (const w of opts.where ?? []) {
    const i = col(w.column, '--where');
    const values = rows.map((r) => r.fields[i]!.trim());
    const kept = rows.filter((r) => r.fields[i]!.trim() === w.value);
    if (kept.length === 0) throw new Error(`${csvFile}: --where ${w.column}=${w.value}: no row matches (column "${w.column}" has: ${listValues(values)})`);
    rows = kept;
  }
  const root = path.dirname(path.resolve(csvFile));
  return rows.map((r) => {
    const name = r.fields[fileCol]!.trim();
    if (!name) throw new Error(`${csvFile}:${r.line}: empty "${csv.header[fileCol]}"`);
    const candidates = path.isAbsolute(name) ? [name] : [path.join(root, name), path.join(root, 'images', name)];
    const file = candidates.find((c) => existsSync(c));
    if (!file) throw new Error(`${csvFile}:${r.line}: image "${name}" not found (looked for ${candidates.join(', ')})`);
    return { file, positive: r.fields[posCol]!.trim() === opts.positiveWhen.value, source: csvFile };
  });
}

/** One list from several sources; an image listed twice is an error naming it (and both labels when they differ). */
export function mergeImageSets(sets: readonly LabelledImage[][]): LabelledImage[] {
  const seen = new Map<string, LabelledImage>();
  const out: LabelledImage[] = [];
  for (const im of sets.flat()) {
    const key = path.resolve(im.file);
    const prev = seen.get(key);
    if (prev) {
      const what = (x: LabelledImage) => `${x.positive ? 'a positive' : 'a negative'} in ${x.source}`;
      throw new Error(`${im.file}: listed twice (${what(prev)}, ${what(im)})`);
    }
    seen.set(key, im);
    out.push(im);
  }
  return out;
}
