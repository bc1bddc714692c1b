"""Training pipeline for the project's own small YOLOX-style detectors (rodent, cigarette).

Modules:
  model        YOLOX-nano-like network (depthwise CSPDarknet, PAFPN, decoupled head)
  onnx_init    loads the COCO yolox_nano.onnx initializers into the torch model, verifies outputs
  data         YOLO-format dataset, letterbox, augmentation (mosaic, scale, flip, HSV, greyscale)
  loss         SimOTA assignment, IoU + BCE losses
  evaluate     decoding, NMS, AP50, precision/recall and threshold choice
  export       ONNX export + onnxruntime check, manifest and model card
"""
