export { annotate, encodeJpeg, overlaySvg, escapeXml, formatLocalTime, FONT_FAMILY, type RgbFrame, type EvidenceDetection, type AnnotateInfo } from './annotate.js';
export { EvidenceStore, EvidenceError, sha256, type EvidenceStoreOptions, type StoredFile, type SaveResult, type RetentionReport } from './store.js';
