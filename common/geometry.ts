/** Box and polygon arithmetic shared by detection (NMS), tracking, rules and evaluation. */
export type BoxXYXY = readonly [number, number, number, number];
export type Point = readonly [number, number];

export function area(b: BoxXYXY): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

export function intersection(a: BoxXYXY, b: BoxXYXY): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

export function iou(a: BoxXYXY, b: BoxXYXY): number {
  const inter = intersection(a, b);
  if (inter === 0) return 0;
  return inter / (area(a) + area(b) - inter);
}

/** Share of `inner` covered by `outer` (0..1): "is the hat on this head". */
export function coverage(inner: BoxXYXY, outer: BoxXYXY): number {
  const a = area(inner);
  return a > 0 ? intersection(inner, outer) / a : 0;
}

export function center(b: BoxXYXY): Point {
  return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
}

/** Ray casting; polygon points in the same units as the point. */
export function pointInPolygon(p: Point, poly: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i]!;
    const [xj, yj] = poly[j]!;
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
