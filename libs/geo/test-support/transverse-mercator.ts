/**
 * UTM by Krüger's series to third order in n (the form on Wikipedia's "Universal Transverse Mercator coordinate
 * system" page, after Karney 2011), written here so that tests check proj4 against a second, independent code
 * path: within a zone the two agree to well under a millimetre.
 */

export interface Ellipsoid {
  /** Semi-major axis, metres. */
  a: number;
  /** Flattening. */
  f: number;
}

export const WGS84_ELLIPSOID: Ellipsoid = { a: 6378137, f: 1 / 298.257223563 };
export const GRS80_ELLIPSOID: Ellipsoid = { a: 6378137, f: 1 / 298.257222101 };

const K0 = 0.9996;
const FALSE_EASTING = 500_000;
const SOUTH_FALSE_NORTHING = 10_000_000;
const DEG = Math.PI / 180;

function series({ a, f }: Ellipsoid) {
  const n = f / (2 - f);
  const n2 = n * n;
  const n3 = n2 * n;
  return {
    n,
    A: (a / (1 + n)) * (1 + n2 / 4 + (n2 * n2) / 64),
    alpha: [n / 2 - (2 * n2) / 3 + (5 * n3) / 16, (13 * n2) / 48 - (3 * n3) / 5, (61 * n3) / 240],
    beta: [n / 2 - (2 * n2) / 3 + (37 * n3) / 96, n2 / 48 + n3 / 15, (17 * n3) / 480],
    delta: [2 * n - (2 * n2) / 3 - 2 * n3, (7 * n2) / 3 - (8 * n3) / 5, (56 * n3) / 15],
  };
}

function centralMeridian(zone: number): number {
  return (zone - 1) * 6 - 180 + 3;
}

/** [longitude, latitude] in degrees of a UTM (easting, northing) in metres. */
export function utmToLonLat(
  easting: number,
  northing: number,
  zone: number,
  south: boolean,
  ellipsoid: Ellipsoid = WGS84_ELLIPSOID,
): [number, number] {
  const { A, beta, delta } = series(ellipsoid);
  const xi = (northing - (south ? SOUTH_FALSE_NORTHING : 0)) / (K0 * A);
  const eta = (easting - FALSE_EASTING) / (K0 * A);
  let xiPrime = xi;
  let etaPrime = eta;
  for (let j = 1; j <= 3; j++) {
    xiPrime -= beta[j - 1] * Math.sin(2 * j * xi) * Math.cosh(2 * j * eta);
    etaPrime -= beta[j - 1] * Math.cos(2 * j * xi) * Math.sinh(2 * j * eta);
  }
  const chi = Math.asin(Math.sin(xiPrime) / Math.cosh(etaPrime));
  let phi = chi;
  for (let j = 1; j <= 3; j++) phi += delta[j - 1] * Math.sin(2 * j * chi);
  const lambda = Math.atan2(Math.sinh(etaPrime), Math.cos(xiPrime));
  return [centralMeridian(zone) + lambda / DEG, phi / DEG];
}

/** UTM (easting, northing) in metres of a [longitude, latitude] in degrees. */
export function lonLatToUtm(
  lon: number,
  lat: number,
  zone: number,
  south: boolean,
  ellipsoid: Ellipsoid = WGS84_ELLIPSOID,
): [number, number] {
  const { n, A, alpha } = series(ellipsoid);
  const phi = lat * DEG;
  const lambda = (lon - centralMeridian(zone)) * DEG;
  const c = (2 * Math.sqrt(n)) / (1 + n);
  const t = Math.sinh(Math.atanh(Math.sin(phi)) - c * Math.atanh(c * Math.sin(phi)));
  const xiPrime = Math.atan2(t, Math.cos(lambda));
  const etaPrime = Math.atanh(Math.sin(lambda) / Math.sqrt(1 + t * t));
  let e = etaPrime;
  let nn = xiPrime;
  for (let j = 1; j <= 3; j++) {
    e += alpha[j - 1] * Math.cos(2 * j * xiPrime) * Math.sinh(2 * j * etaPrime);
    nn += alpha[j - 1] * Math.sin(2 * j * xiPrime) * Math.cosh(2 * j * etaPrime);
  }
  return [FALSE_EASTING + K0 * A * e, (south ? SOUTH_FALSE_NORTHING : 0) + K0 * A * nn];
}

/** [longitude, latitude] in degrees of a Web Mercator (EPSG:3857) position: the spherical Mercator inverse. */
export function webMercatorToLonLat(x: number, y: number): [number, number] {
  const R = 6378137;
  return [x / R / DEG, (2 * Math.atan(Math.exp(y / R)) - Math.PI / 2) / DEG];
}
