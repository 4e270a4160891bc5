/* GCJ-02 <-> WGS-84 in the browser: a line-by-line port of haulwatch.geo.chinacoords
 * (the published Krasovsky-ellipsoid formula, applied inside the usual China box;
 * the inverse by fixed-point iteration to 1e-10 degrees). The console shifts every
 * overlay with it when the base map is in GCJ-02 (AMap / Gaode tiles).
 * tests/api/test_web_console.py checks it against the Python values.
 */
"use strict";

(() => {
  const A = 6378245.0;
  const EE = 0.00669342162296594323;
  const TOL_DEG = 1e-10;
  const MAX_ITER = 30;

  function inChina(lon, lat) {
    return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
  }

  function gcjDelta(lon, lat) {
    const PI = Math.PI;
    const x = lon - 105.0;
    const y = lat - 35.0;
    const sqrtAbsX = Math.sqrt(Math.abs(x));
    const common = (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrtAbsX;
    dlat += common;
    dlat += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    dlat += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    let dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrtAbsX;
    dlon += common;
    dlon += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    dlon += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    const radlat = lat / 180.0 * PI;
    const magic = 1.0 - EE * Math.sin(radlat) ** 2;
    const sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrtmagic) * PI);
    dlon = (dlon * 180.0) / (A / sqrtmagic * Math.cos(radlat) * PI);
    return [dlon, dlat];
  }

  /** [lon, lat] WGS-84 -> GCJ-02 (identity outside China). */
  function wgs84ToGcj02(lon, lat) {
    if (!inChina(lon, lat)) return [lon, lat];
    const [dlon, dlat] = gcjDelta(lon, lat);
    return [lon + dlon, lat + dlat];
  }

  /** [lon, lat] GCJ-02 -> WGS-84 by iterating the forward formula. */
  function gcj02ToWgs84(lon, lat) {
    let wLon = lon;
    let wLat = lat;
    for (let i = 0; i < MAX_ITER; i += 1) {
      const [fLon, fLat] = wgs84ToGcj02(wLon, wLat);
      const eLon = fLon - lon;
      const eLat = fLat - lat;
      wLon -= eLon;
      wLat -= eLat;
      if (!(Math.max(Math.abs(eLon), Math.abs(eLat)) > TOL_DEG)) break;
    }
    return [wLon, wLat];
  }

  window.HaulwatchCoords = Object.freeze({ inChina, wgs84ToGcj02, gcj02ToWgs84 });
})();
