/** The detection stage: model manifests, pre-processing, decoders, NMS, models and the model pack. */
export * from './types.js';
export * from './manifest.js';
export * from './preprocess.js';
export * from './decode.js';
export * from './nms.js';
export * from './model.js';
export * from './pack.js';
export * from './image.js';
export * from './heads.js';
export * from './classifier.js';
