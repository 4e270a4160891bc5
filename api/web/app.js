/* haulwatch dispatcher console: plain JavaScript, no build step, no external asset.
 *
 * Talks to the haulwatch HTTP API with relative URLs (so the service may sit
 * behind a proxy on a sub-path), keeps the bearer token in sessionStorage, and
 * follows the server-sent event stream for new alerts, status changes and
 * drone missions. Data from the server is only ever put in the page as text
 * (textContent / attributes), never as HTML.
 *
 * Every visible string comes from the service's catalog (GET api/i18n/{lang},
 * the same haulwatch/locales/*.json the Python side uses); Simplified Chinese
 * is the default, the language switch is remembered in localStorage. Times are
 * shown in the dataset's zone (GET api/console/config), named once above the list.
 * The map is Leaflet (vendored in the package root, haulwatch/vendor/leaflet, served as vendor/leaflet); base maps come from the
 * deployment (none by default), and with a GCJ-02 base map every overlay is
 * shifted by web/chinacoords.js (a port of haulwatch.geo.chinacoords).
 */
"use strict";

(() => {
  // ---------------------------------------------------------------- constants
  const TOKEN_KEY = "haulwatch.token";
  const LANG_KEY = "haulwatch.lang";
  const LANGS = ["zh-CN", "en"];
  const PAGE_SIZE = 50;
  const MAP_LIMIT = 500;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const KINDS = [
    "illegal_dump", "route_deviation", "unpermitted_origin", "wrong_disposal", "unmanifested_trip",
    "manifest_not_executed", "gps_gap", "unregistered_vehicle", "dump_hotspot",
  ];
  const STATUSES = ["open", "acknowledged", "confirmed", "dismissed"];
  const MISSION_TERMINAL = new Set(["completed", "failed", "aborted", "refused"]);
  const SITE_KINDS = new Set(["origin", "disposal", "depot", "nest", "no_fly"]);
  const DEFAULT_ZONE = "Asia/Shanghai";
  // Zhejiang, until the registry says where the data is.
  const DEFAULT_VIEW = { lat: 30.0, lon: 120.2, zoom: 8 };

  // -------------------------------------------------------------------- state
  const state = {
    token: null,
    lang: "zh-CN",
    timezone: DEFAULT_ZONE,
    basemaps: [],
    filters: { kind: "", status: "", vehicle_id: "" },
    offset: 0,
    total: 0,
    list: [], // AlertPublic of the current page, in server order
    mapAlerts: new Map(), // alert_id -> AlertPublic shown as markers
    selectedId: null,
    detail: null, // AlertDetail of the selected alert
    missions: new Map(), // mission_id -> Mission
    shownMissionId: null,
    sites: null,
    routes: null,
    stream: null,
    streamRetryMs: 1000,
    streamTimer: null,
    streamWasOpen: false,
    missionPoll: null,
    plans: new Map(), // mission_id -> planned path [[lon, lat], ...] (null while loading)
    newUntil: new Map(), // alert_id -> ms epoch until which it is flagged as new
    generation: 0, // bumps on sign-out so late answers are ignored
    conn: "offline",
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------ the catalog
  const catalogs = new Map(); // lang -> {key: text}

  /** The text of ``key`` in the current language, ``{name}`` filled from ``params``. */
  function t(key, params) {
    const cat = catalogs.get(state.lang) || {};
    let text = Object.prototype.hasOwnProperty.call(cat, key) ? cat[key] : null;
    if (text === null) {
      const zh = catalogs.get("zh-CN") || {};
      text = Object.prototype.hasOwnProperty.call(zh, key) ? zh[key] : key;
    }
    if (!params) return text;
    return text.replace(/\{([A-Za-z0-9_]+)\}/g, (m, name) => (
      params[name] === undefined || params[name] === null ? m : String(params[name])));
  }

  /** ``t(key)`` when the catalog has ``key``, else ``fallback``. */
  function tOr(key, fallback) {
    const cat = catalogs.get(state.lang) || {};
    return Object.prototype.hasOwnProperty.call(cat, key) ? cat[key] : fallback;
  }

  async function loadCatalog(lang) {
    if (catalogs.has(lang)) return catalogs.get(lang);
    const response = await fetch("api/i18n/" + encodeURIComponent(lang), {
      headers: { Accept: "application/json" }, cache: "no-cache",
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const data = await response.json();
    catalogs.set(lang, data);
    return data;
  }

  /** Put the catalog's texts into the static page (data-i18n, data-i18n-attr). */
  function applyStaticTexts() {
    if (!catalogs.size) return; // no catalog reached us: the page's own Chinese stays
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      node.textContent = t(node.dataset.i18n);
    }
    for (const node of document.querySelectorAll("[data-i18n-attr]")) {
      for (const pair of node.dataset.i18nAttr.split(";")) {
        const [attr, key] = pair.split(":").map((s) => s.trim());
        if (attr && key) node.setAttribute(attr, t(key));
      }
    }
    $("zone-note").textContent = t("common.zone_note", { zone: state.timezone });
    setConn(state.conn);
  }

  // ----------------------------------------------------------------- helpers
  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  /** Turn a FastAPI error body into one readable sentence. */
  function describeDetail(body, status) {
    const detail = body && body.detail !== undefined ? body.detail : body;
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => {
          if (d && typeof d === "object") {
            const loc = Array.isArray(d.loc)
              ? d.loc.filter((x) => !["body", "path", "query", "header"].includes(x)).join(".") : "";
            return (loc ? loc + ": " : "") + (d.msg || d.reason || JSON.stringify(d));
          }
          return String(d);
        })
        .join("; ");
    }
    if (detail && typeof detail === "object") {
      const parts = [];
      if (detail.field) parts.push(String(detail.field) + ":");
      if (detail.reason || detail.message) parts.push(String(detail.reason || detail.message));
      return parts.length ? parts.join(" ") : JSON.stringify(detail);
    }
    return "HTTP " + status;
  }

  async function api(path, { method = "GET", body, token = state.token } = {}) {
    const headers = { Accept: "application/json", "Accept-Language": state.lang };
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(0, t("console.unreachable", { error: err.message }), null);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_err) {
        data = text;
      }
    }
    if (!response.ok) {
      throw new ApiError(response.status, describeDetail(data, response.status), data);
    }
    return data;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
    }
    const s = q.toString();
    return s ? "?" + s : "";
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /** Plain text made safe for the few Leaflet options that take HTML (attribution, layer names). */
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  let zoneFormat = null;
  function makeZoneFormat() {
    const opts = {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      hourCycle: "h23",
    };
    try {
      zoneFormat = new Intl.DateTimeFormat("en-CA", { ...opts, timeZone: state.timezone });
    } catch (_err) {
      state.timezone = DEFAULT_ZONE;
      zoneFormat = new Intl.DateTimeFormat("en-CA", { ...opts, timeZone: DEFAULT_ZONE });
    }
  }

  function parseTime(iso) {
    if (!iso) return null;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  /** ``2026-03-02 11:06`` in the dataset's zone. */
  function fmtTime(iso) {
    const d = parseTime(iso);
    if (!d) return iso ? String(iso) : "—";
    if (!zoneFormat) makeZoneFormat();
    const p = Object.fromEntries(zoneFormat.formatToParts(d).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day} ${p.hour === "24" ? "00" : p.hour}:${p.minute}`;
  }

  function fmtDuration(seconds) {
    if (!Number.isFinite(seconds)) return "—";
    const s = Math.round(Math.abs(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const r = s % 60;
    if (h) return t("unit.h_min", { h, m });
    if (m) return r ? t("unit.min_s", { m, s: r }) : t("unit.min", { m });
    return t("unit.s", { s: r });
  }

  function fmtNumber(x, digits = 1) {
    return Number(x).toLocaleString(state.lang, { maximumFractionDigits: digits });
  }

  function fmtDistance(m) {
    if (!Number.isFinite(m)) return "—";
    return Math.abs(m) >= 1000 ? fmtNumber(m / 1000, 2) + " km" : fmtNumber(m, 0) + " m";
  }

  function kindLabel(kind) {
    return tOr("kind." + kind, String(kind || t("common.unknown")));
  }

  function siteKindLabel(kind) {
    return tOr("site_kind." + kind, String(kind || "?"));
  }

  function statusLabel(status) {
    return tOr("status." + status, String(status || t("common.unknown")));
  }

  function severityLabel(sev) {
    return tOr("severity." + sev, String(sev || "?"));
  }

  function missionStatusLabel(status) {
    return tOr("mission_status." + status, String(status || "?"));
  }

  /** The alert's summary in the page's language (Chinese: rendered from the alert's fields
   *  like routes.report.localized_summary, or the API's summary_zh; English: summary_en). */
  function summaryOf(a) {
    if (!a) return "";
    if (state.lang === "en") return a.summary_en || a.summary || "";
    // Rendered here (sites by name, the dataset's zone) when the evidence is at hand,
    // else the service's Chinese sentence, else the detectors' own.
    return localSummary(a) || a.summary_zh || a.summary || "";
  }

  /** Whole minutes (half up) as the detectors count them, in words. */
  function minutesText(seconds) {
    const sec = Number(seconds);
    if (seconds === null || seconds === undefined || seconds === "" || !Number.isFinite(sec)) return null;
    const minutes = Math.floor(Math.abs(sec) / 60 + 0.5);
    if (minutes >= 60) return t("unit.h_min", { h: Math.floor(minutes / 60), m: minutes % 60 });
    if (minutes >= 1) return t("unit.min", { m: minutes });
    return t("unit.s", { s: Math.floor(Math.abs(sec) + 0.5) });
  }

  function distanceText(metres) {
    const m = Number(metres);
    if (metres === null || metres === undefined || metres === "" || !Number.isFinite(m)) return null;
    return Math.abs(m) >= 1000 ? (m / 1000).toFixed(1) + " km" : m.toFixed(0) + " m";
  }

  /** A site's name (its id when it has none). */
  function siteText(siteId) {
    if (!siteId) return null;
    const f = ((state.sites && state.sites.features) || []).find(
      (x) => x.properties && x.properties.site_id === siteId);
    return (f && f.properties.name) || String(siteId);
  }

  /** The catalog's summary.<kind> sentence filled from the alert's fields and evidence, or null. */
  function localSummary(a) {
    let ev = a.evidence;
    if (typeof ev === "string") {
      try { ev = JSON.parse(ev); } catch (_err) { ev = null; }
    }
    ev = ev && typeof ev === "object" && !Array.isArray(ev) ? ev : {};
    const first = (v) => (Array.isArray(v) && v.length ? v[0] : null);
    const blank = (v) => v === null || v === undefined || v === "";
    const p = {
      vehicle: a.vehicle_id || null,
      time: a.start ? fmtTime(a.start) : null,
      site: siteText(a.site_id),
      manifest: a.manifest_id || first(ev.manifest_ids) || null,
      origin: siteText(ev.origin_site_id),
      disposal: siteText(ev.disposal_site_id),
      distance: distanceText(ev.distance_to_permitted_site_m),
    };
    let key = "summary." + a.kind;
    switch (a.kind) {
      case "illegal_dump":
        if (!blank(ev.at_site_id)) {
          key = "summary.illegal_dump_at_site";
          p.site = siteText(ev.at_site_id);
          p.duration = minutesText(ev.stop_duration_s);
        } else if ((Number(ev.dark_s) || 0) > 0) {
          key = "summary.illegal_dump_dark";
          p.duration = minutesText(ev.dark_s);
        } else {
          p.duration = minutesText(ev.stop_duration_s);
        }
        break;
      case "route_deviation":
        p.route = first(ev.route_ids);
        p.duration = minutesText(ev.off_corridor_s);
        p.offset = distanceText(ev.max_off_corridor_m);
        break;
      case "unpermitted_origin":
        p.duration = minutesText(ev.dwell_duration_s);
        if (p.site) key = "summary.unpermitted_origin_permit";
        break;
      case "wrong_disposal": {
        const expected = (Array.isArray(ev.manifest_disposal_site_ids) ? ev.manifest_disposal_site_ids : [])
          .map((x) => siteText(String(x)));
        p.expected = expected.length ? expected.join(state.lang === "en" ? ", " : "、") : null;
        p.site = p.site || p.disposal;
        break;
      }
      case "manifest_not_executed":
        p.from = ev.valid_from || a.start ? fmtTime(ev.valid_from || a.start) : null;
        p.to = ev.valid_to || a.end ? fmtTime(ev.valid_to || a.end) : null;
        break;
      case "gps_gap":
        p.duration = minutesText(ev.gap_s);
        p.moved = distanceText(ev.moved_while_dark_m);
        break;
      case "unregistered_vehicle":
        p.day = blank(ev.day) ? null : ev.day;
        p.loads = blank(ev.loads) ? null : ev.loads;
        break;
      case "dump_hotspot": {
        const dumps = Array.isArray(ev.dumps) ? ev.dumps : [];
        let trucks = Array.isArray(ev.vehicles) ? ev.vehicles.length : ev.vehicles;
        if (!Number.isInteger(trucks) && dumps.length) {
          trucks = new Set(dumps.filter((d) => Array.isArray(d) && d.length).map((d) => d[0])).size;
        }
        p.day = blank(ev.day) ? null : ev.day;
        p.trucks = Number.isInteger(trucks) ? trucks : null;
        p.dumps = dumps.length || null;
        p.radius = distanceText(ev.hotspot_radius_m);
        break;
      }
      default:
        break;
    }
    const cat = catalogs.get(state.lang) || {};
    if (!Object.prototype.hasOwnProperty.call(cat, key)) return null;
    const needed = [...cat[key].matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]);
    if (needed.some((name) => p[name] === null || p[name] === undefined)) return null;
    return t(key, p);
  }

  // For the browser tests (the same sentence as routes.report.localized_summary), and for
  // web/fleet.js (drone fleet panel, flown evidence): helpers and hooks, nothing else shared.
  const hooks = { session: [], detail: [], datum: [], lang: [], mission: [] };
  function fire(name, arg) {
    for (const fn of hooks[name] || []) {
      try { fn(arg); } catch (err) { window.console.error(err); }
    }
  }
  window.haulwatchConsole = Object.freeze({
    localSummary: (a) => localSummary(a),
    /** on("session" | "detail" | "datum" | "lang" | "mission", fn) */
    on: (name, fn) => { if (hooks[name] && typeof fn === "function") hooks[name].push(fn); },
    api: (path, opts) => api(path, opts),
    t: (key, params) => t(key, params),
    tOr: (key, fallback) => tOr(key, fallback),
    fmtTime: (iso) => fmtTime(iso),
    fmtNumber: (x, digits) => fmtNumber(x, digits),
    el: (...args) => el(...args),
    siteText: (id) => siteText(id),
    kindLabel: (k) => kindLabel(k),
    severityLabel: (s) => severityLabel(s),
    missionStatusLabel: (s) => missionStatusLabel(s),
    reasonText: (r) => reasonText(r),
    renderReason: (code, params) => renderReason(code, params),
    missionReasonText: (m) => missionReasonText(m),
    announce: (text) => announce(text),
    showMessage: (text, kind) => showMessage(text, kind),
    selectAlert: (id) => selectAlert(id),
    current: () => ({ token: state.token, lang: state.lang, selectedId: state.selectedId, detail: state.detail }),
    map: {
      lf: () => map.lf,
      datum: () => map.datum,
      ll: (lon, lat) => map.ll(lon, lat),
      decorate: (layer, attrs, title) => map.decorate(layer, attrs, title),
      fitBounds: (b, opts) => map.fitBounds(b, opts),
    },
  });

  /** A site's display name (its id when it has none). */
  function siteName(siteId) {
    if (!siteId) return "—";
    const f = ((state.sites && state.sites.features) || []).find(
      (x) => x.properties && x.properties.site_id === siteId);
    const name = f && f.properties.name;
    return name ? `${name} (${siteId})` : String(siteId);
  }

  const UNIT_SUFFIX = /_(m_s|s|min|m|km|kmh|pct|percent|m3|deg)$/;

  function humanKey(key) {
    // The unit is in the formatted value: drop it from the label (stop_duration_s -> 停留时长).
    const k = String(key);
    const base = k.replace(UNIT_SUFFIX, "") || k;
    const known = tOr("evidence." + base, null) || tOr("evidence." + k, null);
    if (known) return known;
    const s = base.replace(/_/g, " ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  /** Format an evidence value, using the unit its key carries (house rule). */
  function fmtValue(key, value) {
    if (value === null || value === undefined || value === "") return "—";
    const k = String(key);
    if (typeof value === "number") {
      if (/_m_s$/.test(k)) return fmtNumber(value, 1) + " m/s";
      if (/_s$/.test(k)) return fmtDuration(value);
      if (/_min$/.test(k)) return fmtDuration(value * 60);
      if (/_km$/.test(k)) return fmtNumber(value, 2) + " km";
      if (/_m$/.test(k)) return fmtDistance(value);
      if (/_kmh$/.test(k)) return fmtNumber(value, 1) + " km/h";
      if (/_(pct|percent)$/.test(k)) return fmtNumber(value, 0) + " %";
      if (/_m3$/.test(k)) return fmtNumber(value, 1) + " m³";
      if (/_deg$/.test(k)) return fmtNumber(value, 1) + "°";
      return fmtNumber(value, 6);
    }
    if (typeof value === "boolean") return value ? t("common.yes") : t("common.no");
    if (typeof value === "string") {
      if (/(^|_)(time|at|start|end|from|to|since|dark)$/.test(k) && parseTime(value)) return fmtTime(value);
      if (/(^|_)site_id$/.test(k)) return siteText(value);
      if (/^load(_|$)/.test(k)) return tOr("load." + value, value);
      return value;
    }
    if (Array.isArray(value) && value.every((v) => typeof v !== "object" || v === null)) {
      return value.map((v) => fmtValue(/site_ids$/.test(k) ? "site_id" : "", v)).join(", ");
    }
    return JSON.stringify(value);
  }

  function showMessage(text, kind = "error") {
    const m = $("message");
    if (!text) {
      m.hidden = true;
      m.textContent = "";
      return;
    }
    m.textContent = text;
    m.dataset.kind = kind;
    m.hidden = false;
  }

  function announce(text) {
    const a = $("announcer");
    a.textContent = "";
    // A fresh text node so screen readers announce repeated messages too.
    window.setTimeout(() => { a.textContent = text; }, 30);
  }

  // --------------------------------------------------------------- geometry
  function isLonLat(c) {
    return Array.isArray(c) && c.length >= 2 && Number.isFinite(+c[0]) && Number.isFinite(+c[1])
      && Math.abs(+c[0]) <= 180 && Math.abs(+c[1]) <= 90;
  }

  /** Every [lon, lat] position of a GeoJSON geometry, flattened. */
  function positions(geom, out = []) {
    if (!geom || typeof geom !== "object") return out;
    const walk = (c) => {
      if (isLonLat(c) && !Array.isArray(c[0])) out.push([+c[0], +c[1]]);
      else if (Array.isArray(c)) c.forEach(walk);
    };
    if (geom.type === "GeometryCollection") (geom.geometries || []).forEach((g) => positions(g, out));
    else if (geom.type === "Feature") positions(geom.geometry, out);
    else if (geom.type === "FeatureCollection") (geom.features || []).forEach((f) => positions(f, out));
    else walk(geom.coordinates);
    return out;
  }

  function boundsOf(points) {
    let b = null;
    for (const [lon, lat] of points) {
      if (!b) b = [lon, lat, lon, lat];
      else {
        b[0] = Math.min(b[0], lon); b[1] = Math.min(b[1], lat);
        b[2] = Math.max(b[2], lon); b[3] = Math.max(b[3], lat);
      }
    }
    return b;
  }

  // ---------------------------------------------------------------- the map
  /** Leaflet map: overlays in WGS-84 from the API, shifted to GCJ-02 on a GCJ-02 base map. */
  const map = {
    lf: null,
    datum: "wgs84",
    groups: {},
    corridors: [], // {layer, corridor_m}
    baseEntries: [], // {name, layer, datum}
    layersControl: null,
    zoomControl: null,
    fitted: false,
    lastPlan: null,
    lastDrone: null,

    /** WGS-84 [lon, lat] -> Leaflet LatLng in the base map's datum. */
    ll(lon, lat) {
      if (this.datum === "gcj02" && window.HaulwatchCoords) {
        const [x, y] = window.HaulwatchCoords.wgs84ToGcj02(+lon, +lat);
        return L.latLng(y, x);
      }
      return L.latLng(+lat, +lon);
    },

    /** Leaflet LatLng -> WGS-84 [lon, lat]. */
    wgs(latlng) {
      if (this.datum === "gcj02" && window.HaulwatchCoords) {
        return window.HaulwatchCoords.gcj02ToWgs84(latlng.lng, latlng.lat);
      }
      return [latlng.lng, latlng.lat];
    },

    /** Nested Leaflet LatLngs of a GeoJSON geometry's coordinates. */
    latlngs(geom) {
      const conv = (c) => (isLonLat(c) ? this.ll(c[0], c[1]) : null);
      const ring = (r) => (Array.isArray(r) ? r.map(conv).filter(Boolean) : []);
      if (!geom || !geom.coordinates) return [];
      switch (geom.type) {
        case "LineString": return ring(geom.coordinates);
        case "MultiLineString": return geom.coordinates.map(ring);
        case "Polygon": return geom.coordinates.map(ring);
        case "MultiPolygon": return geom.coordinates.map((p) => p.map(ring));
        default: return [];
      }
    },

    init() {
      const lf = L.map("map", {
        zoomControl: false, zoomSnap: 1, zoomDelta: 1, keyboard: true, minZoom: 3, maxZoom: 19,
        fadeAnimation: false, zoomAnimation: false, markerZoomAnimation: false,
      });
      this.lf = lf;
      lf.attributionControl.setPrefix("Leaflet");
      // One pane per kind of overlay, so the stacking never depends on drawing order.
      for (const [name, z] of [["routes", 410], ["evidence", 420], ["plan", 430], ["alerts", 440], ["drone", 460]]) {
        lf.createPane(name).style.zIndex = String(z);
      }
      for (const name of ["sites", "routes", "labels", "markers", "evidence", "plan", "drone"]) {
        this.groups[name] = L.layerGroup().addTo(lf);
      }
      lf.setView([DEFAULT_VIEW.lat, DEFAULT_VIEW.lon], DEFAULT_VIEW.zoom);
      L.control.scale({ imperial: false, position: "bottomleft" }).addTo(lf);
      this.setControls();
      lf.on("moveend zoomend", () => this.recordView());
      lf.on("zoomend", () => this.updateCorridors());
      lf.on("mousemove", (e) => {
        const [lon, lat] = this.wgs(e.latlng);
        $("cursor-pos").textContent = lon.toFixed(5) + ", " + lat.toFixed(5);
      });
      lf.on("baselayerchange", (e) => {
        const entry = this.baseEntries.find((b) => b.layer === e.layer);
        this.setDatum(entry ? entry.datum : "wgs84");
      });
      lf.getContainer().addEventListener("keydown", (e) => {
        if (e.key === "0" && !e.target.closest("input, select")) {
          this.fitAll();
          e.preventDefault();
        }
      });
      $("zoom-fit").addEventListener("click", () => this.fitAll());
      $("zoom-alert").addEventListener("click", () => this.fitSelected());
      if (window.ResizeObserver) new ResizeObserver(() => lf.invalidateSize()).observe($("map"));
      this.recordView();
    },

    /** Zoom buttons with titles in the page's language (recreated on a language switch). */
    setControls() {
      if (this.zoomControl) this.zoomControl.remove();
      this.zoomControl = L.control.zoom({
        position: "topright",
        zoomInTitle: t("console.zoom_in"),
        zoomOutTitle: t("console.zoom_out"),
      }).addTo(this.lf);
      this.setBasemaps(state.basemaps, { keep: true });
    },

    /** The view as attributes on #map (tests and screen readers read the zoom). */
    recordView() {
      const c = this.lf.getCenter();
      const box = $("map");
      box.dataset.zoom = String(this.lf.getZoom());
      box.dataset.center = `${c.lat.toFixed(7)},${c.lng.toFixed(7)}`;
      box.dataset.datum = this.datum;
    },

    /** The deployment's base maps (api/console/config); the first is shown, none when empty. */
    setBasemaps(basemaps, { keep = false } = {}) {
      const current = keep ? this.baseEntries.findIndex((b) => this.lf.hasLayer(b.layer)) : -1;
      for (const b of this.baseEntries) this.lf.removeLayer(b.layer);
      if (this.layersControl) this.layersControl.remove();
      this.layersControl = null;
      this.baseEntries = [];
      if (!basemaps || !basemaps.length) {
        this.setDatum("wgs84");
        return;
      }
      this.baseEntries.push({ name: t("console.basemap_none"), layer: L.layerGroup(), datum: "wgs84" });
      for (const b of basemaps) {
        const layers = (b.layers || []).map((l, i) => L.tileLayer(l.url, {
          subdomains: l.subdomains || "a",
          minZoom: 1,
          maxZoom: 19,
          maxNativeZoom: Number.isFinite(l.max_zoom) ? l.max_zoom : 18,
          attribution: i === 0 && b.attribution ? escapeHtml(b.attribution) : "",
          className: "basemap-tiles",
        }));
        this.baseEntries.push({ name: String(b.name || b.id), layer: L.layerGroup(layers), datum: b.datum === "gcj02" ? "gcj02" : "wgs84", id: b.id });
      }
      const control = {};
      for (const b of this.baseEntries) control[escapeHtml(b.name)] = b.layer;
      this.layersControl = L.control.layers(control, null, { position: "topright", collapsed: true }).addTo(this.lf);
      const pick = current >= 0 ? current : 1;
      this.baseEntries[pick].layer.addTo(this.lf);
      this.setDatum(this.baseEntries[pick].datum);
    },

    /** Redraw every overlay in the datum of the base map shown. */
    setDatum(datum) {
      const changed = datum !== this.datum;
      this.datum = datum;
      this.recordView();
      if (!changed) return;
      this.drawRegistry();
      this.drawMarkers();
      this.drawEvidence(state.detail);
      this.drawPlan(this.lastPlan);
      this.drawDrone(this.lastDrone);
      fire("datum", datum);
    },

    /** SVG attributes and a hover title on a drawn Leaflet layer. */
    decorate(layer, attrs, title) {
      const node = layer.getElement ? layer.getElement() : null;
      if (!node) return;
      for (const [k, v] of Object.entries(attrs || {})) {
        if (v !== null && v !== undefined) node.setAttribute(k, String(v));
      }
      if (title) {
        const isSvg = node.namespaceURI === SVG_NS;
        if (isSvg) {
          const tt = document.createElementNS(SVG_NS, "title");
          tt.textContent = title;
          node.append(tt);
        } else {
          node.setAttribute("title", title);
        }
      }
    },

    /** Show a WGS-84 lon/lat bounding box, at least ``minSpanM`` across. */
    fitBounds(b, { padPx = 40, minSpanM = 400 } = {}) {
      if (!b) return;
      const cy = (b[1] + b[3]) / 2;
      const cx = (b[0] + b[2]) / 2;
      const halfLat = Math.max((b[3] - b[1]) / 2, minSpanM / 2 / 111320);
      const halfLon = Math.max((b[2] - b[0]) / 2, minSpanM / 2 / (111320 * Math.cos((cy * Math.PI) / 180)));
      const box = L.latLngBounds(this.ll(cx - halfLon, cy - halfLat), this.ll(cx + halfLon, cy + halfLat));
      const size = this.lf.getSize();
      const pad = Math.min(padPx, size.x / 4, size.y / 4);
      this.lf.fitBounds(box, { padding: [pad, pad], maxZoom: 18, animate: false });
    },

    fitAll() {
      const pts = [];
      if (state.sites) positions(state.sites, pts);
      if (state.routes) positions(state.routes, pts);
      for (const a of state.mapAlerts.values()) {
        if (Number.isFinite(a.lon) && Number.isFinite(a.lat)) pts.push([a.lon, a.lat]);
      }
      this.fitBounds(boundsOf(pts));
    },

    fitSelected() {
      const d = state.detail;
      if (!d) return;
      const pts = positions(d.geometry);
      pts.push(...evidenceTrack(d.evidence));
      if (Number.isFinite(d.lon) && Number.isFinite(d.lat)) pts.push([d.lon, d.lat]);
      this.fitBounds(boundsOf(pts), { padPx: 60, minSpanM: 600 });
    },

    /** Corridors are drawn in metres: their stroke follows the zoom. */
    updateCorridors() {
      const z = this.lf.getZoom();
      for (const c of this.corridors) {
        const lat = c.layer.getBounds().getCenter().lat;
        const mPerPx = (40075016.686 * Math.cos((lat * Math.PI) / 180)) / 2 ** (z + 8);
        c.layer.setStyle({ weight: Math.max(1, (2 * c.corridor_m) / mPerPx) });
      }
    },

    drawRegistry() {
      const g = this.groups;
      g.sites.clearLayers();
      g.routes.clearLayers();
      g.labels.clearLayers();
      this.corridors = [];
      for (const f of (state.routes && state.routes.features) || []) {
        const p = f.properties || {};
        const lls = this.latlngs(f.geometry);
        if (!lls.length) continue;
        const corridor = Number(p.corridor_m);
        if (Number.isFinite(corridor) && corridor > 0) {
          const band = L.polyline(lls, { className: "corridor", interactive: false, pane: "routes" });
          g.routes.addLayer(band);
          this.corridors.push({ layer: band, corridor_m: corridor });
        }
        const line = L.polyline(lls, { className: "route", pane: "routes" });
        g.routes.addLayer(line);
        const title = t("console.route_title", {
          id: p.route_id || "?", origin: siteName(p.origin_site_id), disposal: siteName(p.disposal_site_id),
        }) + (Number.isFinite(corridor) ? t("console.route_corridor", { width: fmtDistance(corridor) }) : "");
        this.decorate(line, { "data-route-id": p.route_id }, title);
      }
      const many = ((state.sites && state.sites.features) || []).length > 40;
      for (const f of (state.sites && state.sites.features) || []) {
        const p = f.properties || {};
        const lls = this.latlngs(f.geometry);
        if (!lls.length) continue;
        const kind = SITE_KINDS.has(p.kind) ? p.kind : "other";
        const poly = L.polygon(lls, { className: `site site-${kind}` });
        g.sites.addLayer(poly);
        const permit = p.permit_from || p.permit_to
          ? t("console.site_permit", { from: p.permit_from || "…", to: p.permit_to || "…" }) : "";
        // Sites by name; the id on hover.
        this.decorate(poly, { "data-site-id": p.site_id, "data-kind": p.kind }, t("console.site_title", {
          name: p.name || p.site_id || "?", id: p.site_id || "?", kind: siteKindLabel(p.kind), permit,
        }));
        const b = boundsOf(positions(f.geometry));
        if (!b) continue;
        if (kind === "nest") {
          // Docks are small: a fixed-size symbol keeps them visible at every zoom.
          const icon = L.marker(this.ll((b[0] + b[2]) / 2, (b[1] + b[3]) / 2), {
            icon: L.divIcon({ className: "nest-icon", iconSize: [12, 12] }),
            interactive: false, keyboard: false,
          });
          g.labels.addLayer(icon);
          this.decorate(icon, { "data-site-id": p.site_id });
        }
        if (many && kind !== "nest" && kind !== "disposal") continue;
        // Under the site, so the label never hides the polygon or an alert on it.
        const label = L.tooltip({
          permanent: true, direction: "bottom", className: "site-label", interactive: false, offset: [0, 2],
        }).setLatLng(this.ll((b[0] + b[2]) / 2, b[1])).setContent(el("span", { text: p.name || p.site_id || "" }));
        g.labels.addLayer(label);
      }
      this.updateCorridors();
    },

    drawMarkers() {
      const layer = this.groups.markers;
      if (!layer) return;
      layer.clearLayers();
      const alerts = [...state.mapAlerts.values()].filter(
        (a) => Number.isFinite(a.lon) && Number.isFinite(a.lat));
      const sevRank = { low: 0, medium: 1, high: 2 };
      // High severity on top; the selected alert last of all.
      alerts.sort((a, b) => (sevRank[a.severity] ?? 0) - (sevRank[b.severity] ?? 0)
        || (a.alert_id === state.selectedId) - (b.alert_id === state.selectedId));
      for (const a of alerts) {
        const selected = a.alert_id === state.selectedId;
        const marker = L.circleMarker(this.ll(a.lon, a.lat), {
          radius: selected ? 9 : 6,
          className: `marker sev-${a.severity || "low"} status-${a.status || "open"}${selected ? " selected" : ""}`,
          pane: "alerts",
          bubblingMouseEvents: false,
        });
        marker.on("click", () => selectAlert(a.alert_id, { fromMap: true }));
        layer.addLayer(marker);
        this.decorate(marker, { "data-alert-id": a.alert_id }, t("console.marker_title", {
          kind: kindLabel(a.kind), vehicle: a.vehicle_id || t("common.no_vehicle"), status: statusLabel(a.status),
        }));
      }
      if (!this.fitted && (state.sites || alerts.length)) {
        this.fitted = true;
        this.fitAll();
      }
    },

    /** The planned flight path ([[lon, lat], ...] from the mission's .plan), or none. */
    drawPlan(path) {
      this.lastPlan = path || null;
      const layer = this.groups.plan;
      layer.clearLayers();
      if (!path || path.length < 2) return;
      const line = L.polyline(path.map(([lon, lat]) => this.ll(lon, lat)), {
        className: "plan-path", pane: "plan", interactive: false,
      });
      layer.addLayer(line);
      this.decorate(line, { "data-points": path.length });
    },

    /** The drone's last reported position (from mission progress), or none. */
    drawDrone(pos) {
      this.lastDrone = pos || null;
      const layer = this.groups.drone;
      layer.clearLayers();
      if (!pos) return;
      const m = L.circleMarker(this.ll(pos[0], pos[1]), {
        radius: 7, className: "drone", pane: "drone", interactive: false,
      });
      layer.addLayer(m);
      this.decorate(m, { "data-lon": pos[0], "data-lat": pos[1] },
        t("console.drone_title", { lon: pos[0].toFixed(5), lat: pos[1].toFixed(5) }));
    },

    drawEvidence(detail) {
      const layer = this.groups.evidence;
      if (!layer) return;
      layer.clearLayers();
      if (!detail) return;
      const track = evidenceTrack(detail.evidence);
      const geom = detail.geometry;
      if (geom && /LineString|Polygon/.test(geom.type || "")) {
        const area = /Polygon/.test(geom.type);
        const lls = this.latlngs(geom);
        if (lls.length) {
          const shape = (area ? L.polygon : L.polyline)(lls, {
            className: "evidence-geometry" + (area ? " area" : ""), pane: "evidence", interactive: false,
          });
          layer.addLayer(shape);
          this.decorate(shape, { "data-alert-id": detail.alert_id });
        }
      }
      if (track.length >= 2) {
        const line = L.polyline(track.map(([lon, lat]) => this.ll(lon, lat)), {
          className: "evidence-track", pane: "evidence", interactive: false,
        });
        layer.addLayer(line);
        this.decorate(line, { "data-points": track.length });
      }
      const dot = (lon, lat, r, cls, attrs) => {
        const m = L.circleMarker(this.ll(lon, lat), { radius: r, className: cls, pane: "evidence", interactive: false });
        layer.addLayer(m);
        this.decorate(m, attrs);
      };
      if (track.length <= 300) {
        for (const [lon, lat] of track) dot(lon, lat, 2.5, "evidence-vertex");
      }
      if (track.length >= 2) {
        dot(track[0][0], track[0][1], 5, "evidence-end", { "data-end": "first" });
        const last = track[track.length - 1];
        dot(last[0], last[1], 5, "evidence-end", { "data-end": "last" });
      }
      if (Number.isFinite(detail.lon) && Number.isFinite(detail.lat)) {
        // The alert's own point (the stop, the farthest off-corridor point...): a square.
        const point = L.marker(this.ll(detail.lon, detail.lat), {
          icon: L.divIcon({ className: "evidence-point", iconSize: [14, 14] }),
          interactive: false, keyboard: false,
        });
        layer.addLayer(point);
        this.decorate(point, { "data-alert-id": detail.alert_id });
      }
    },
  };

  /** The evidence track as [[lon, lat], ...] whatever shape the server gave. */
  function evidenceTrack(evidence) {
    if (!evidence || typeof evidence !== "object") return [];
    const raw = evidence.track;
    if (!raw) return [];
    if (raw.type) return positions(raw);
    if (!Array.isArray(raw)) return [];
    const out = [];
    for (const p of raw) {
      if (Array.isArray(p) && isLonLat(p)) out.push([+p[0], +p[1]]);
      else if (p && typeof p === "object" && isLonLat([p.lon, p.lat])) out.push([+p.lon, +p.lat]);
    }
    return out;
  }
  // ------------------------------------------------------------ alert list
  // The separators ingest.plates.normalize_plate removes (same set, same order of steps).
  const PLATE_SEPARATORS = /[\s\u00b7\u2022\u2027\u2219\u22c5\u30fb\uff65\-\u2010-\u2015\u2212_.]/g;

  /** Plates as the service compares them: NFKC, upper case, separators removed. */
  function normalizePlate(plate) {
    return String(plate || "").normalize("NFKC").toUpperCase().replace(PLATE_SEPARATORS, "");
  }

  function matchesFilters(a) {
    const f = state.filters;
    return (!f.kind || a.kind === f.kind) && (!f.status || a.status === f.status)
      && (!f.vehicle_id || normalizePlate(a.vehicle_id) === normalizePlate(f.vehicle_id));
  }

  function ensureKindOption(kind) {
    if (!kind) return;
    const select = $("filter-kind");
    if ([...select.options].some((o) => o.value === kind)) return;
    select.append(el("option", { value: kind, text: kindLabel(kind) }));
  }

  let renderFrame = null;
  /** Coalesce redraws: a burst of stream events costs one render per frame. */
  function scheduleRender() {
    if (renderFrame !== null) return;
    renderFrame = window.requestAnimationFrame(() => {
      renderFrame = null;
      renderList();
      map.drawMarkers();
    });
  }

  function renderList() {
    const ul = $("alert-list");
    const now = Date.now();
    ul.replaceChildren();
    for (const a of state.list) {
      const selected = a.alert_id === state.selectedId;
      const btn = el("button", {
        type: "button",
        class: "alert-item" + ((state.newUntil.get(a.alert_id) || 0) > now ? " is-new" : ""),
        "data-alert-id": a.alert_id,
        "data-status": a.status,
        "aria-current": selected ? "true" : null,
      },
      el("span", { class: `sev sev-${a.severity || "low"}`, text: severityLabel(a.severity) }),
      el("span", { class: "kind", text: kindLabel(a.kind) }),
      el("span", { class: "status-chip", "data-status": a.status, text: statusLabel(a.status) }),
      el("span", { class: "vehicle", text: a.vehicle_id || "—" }),
      el("span", { class: "when", text: fmtTime(a.start) }),
      el("span", { class: "summary-line", text: summaryOf(a) }));
      btn.addEventListener("click", () => selectAlert(a.alert_id));
      ul.append(el("li", {}, btn));
    }
    const total = state.total;
    $("alert-count").textContent = state.token ? `(${total})` : "";
    const empty = $("list-empty");
    if (!state.token) {
      empty.textContent = t("console.need_token");
      empty.hidden = false;
    } else if (!state.list.length) {
      empty.textContent = t("console.no_match");
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
    const from = total ? state.offset + 1 : 0;
    const to = state.offset + state.list.length;
    $("page-info").textContent = total ? t("console.page_info", { from, to, total }) : "";
    $("page-prev").disabled = state.offset <= 0;
    $("page-next").disabled = state.offset + state.list.length >= total;
  }

  let listSeq = 0;
  let mapSeq = 0;

  async function loadAlerts() {
    const gen = state.generation;
    const seq = ++listSeq; // a later request (new filter, next page) wins over an earlier one
    const sinceEvent = streamLog.seq;
    const params = { ...state.filters, limit: PAGE_SIZE, offset: state.offset };
    const page = await api("api/alerts" + query(params));
    if (gen !== state.generation || seq !== listSeq) return;
    state.list = Array.isArray(page.items) ? page.items : [];
    state.total = Number.isFinite(page.total) ? page.total : state.list.length;
    state.list.forEach((a) => ensureKindOption(a.kind));
    renderList();
    await loadMapAlerts();
    // The answer may predate events that arrived while it travelled: apply those again.
    replayStream(sinceEvent);
  }

  /** Alerts received from the stream, numbered, so a reload can re-apply the newer ones. */
  const streamLog = { seq: 0, items: [] };

  function logStreamAlert(a) {
    streamLog.seq += 1;
    streamLog.items.push({ seq: streamLog.seq, alert: a });
    if (streamLog.items.length > 1000) streamLog.items.splice(0, streamLog.items.length - 1000);
  }

  function replayStream(sinceSeq) {
    for (const { seq, alert } of streamLog.items) {
      if (seq <= sinceSeq) continue;
      const known = state.list.some((x) => x.alert_id === alert.alert_id);
      // Counted already by the answer when it is on this page; otherwise it is news to it.
      upsertAlert(alert, { fromStream: !known, quiet: true });
    }
  }

  async function loadMapAlerts() {
    const gen = state.generation;
    const seq = ++mapSeq;
    let features = null;
    try {
      const fc = await api("api/alerts.geojson" + query({ ...state.filters, limit: MAP_LIMIT }));
      features = fc && Array.isArray(fc.features) ? fc.features : null;
    } catch (err) {
      if (err.status === 401) throw err;
      features = null; // fall back to the list page below
    }
    if (gen !== state.generation || seq !== mapSeq) return;
    state.mapAlerts = new Map();
    if (features) {
      for (const f of features) {
        const p = { ...(f.properties || {}), geometry: f.geometry };
        if (!Number.isFinite(p.lon) || !Number.isFinite(p.lat)) {
          const pts = positions(f.geometry);
          if (pts.length) [p.lon, p.lat] = pts[0];
        }
        if (p.alert_id) state.mapAlerts.set(p.alert_id, p);
      }
    }
    for (const a of state.list) state.mapAlerts.set(a.alert_id, a);
    const shown = state.mapAlerts.size;
    $("map-note").textContent = state.total > shown ? t("console.map_note", { shown, total: state.total }) : "";
    map.drawMarkers();
  }

  /** Newer fields of ``a`` over ``old``; a status older than the one held never wins. */
  function mergeAlert(old, a) {
    const merged = { ...(old || {}), ...a };
    if (old && Number.isInteger(old.status_version) && Number.isInteger(a.status_version)
      && a.status_version < old.status_version) {
      merged.status = old.status;
      merged.status_version = old.status_version;
    }
    return merged;
  }

  /** Merge a new or changed alert (from the stream or an answer) into the page. */
  function upsertAlert(a, { fromStream = false, quiet = false } = {}) {
    if (!a || !a.alert_id) return;
    ensureKindOption(a.kind);
    const i = state.list.findIndex((x) => x.alert_id === a.alert_id);
    if (i >= 0) {
      state.list[i] = mergeAlert(state.list[i], a);
    } else if (fromStream && a.kind !== undefined && matchesFilters(a)) { // a whole alert, not a patch
      state.total += 1;
      if (state.offset === 0) {
        state.list.unshift(a);
        if (state.list.length > PAGE_SIZE) state.list.pop();
        state.newUntil.set(a.alert_id, Date.now() + 2500);
        window.setTimeout(() => state.newUntil.delete(a.alert_id), 3000);
      }
      if (!quiet) announce(t("console.new_alert", { kind: kindLabel(a.kind), vehicle: a.vehicle_id || t("common.no_vehicle") }));
    }
    if (state.mapAlerts.has(a.alert_id) || (a.kind !== undefined && matchesFilters(a))) {
      state.mapAlerts.set(a.alert_id, mergeAlert(state.mapAlerts.get(a.alert_id), a));
    }
    scheduleRender();
  }

  // ---------------------------------------------------------------- detail
  async function selectAlert(alertId, { fromMap = false } = {}) {
    state.selectedId = alertId;
    renderList();
    map.drawMarkers();
    $("zoom-alert").disabled = false;
    try {
      await loadDetail(alertId);
      if (state.selectedId === alertId) loadMissionsFor(alertId);
      map.fitSelected();
      if (fromMap) {
        const item = document.querySelector(`.alert-item[data-alert-id="${CSS.escape(alertId)}"]`);
        if (item) item.scrollIntoView({ block: "nearest" });
      }
    } catch (err) {
      showMessage(t("console.load_alert_failed", { id: alertId, error: err.message }));
    }
  }

  async function loadDetail(alertId) {
    const gen = state.generation;
    const detail = await api("api/alerts/" + encodeURIComponent(alertId));
    if (gen !== state.generation || state.selectedId !== alertId) return;
    if (detail && typeof detail.evidence === "string") {
      try { detail.evidence = JSON.parse(detail.evidence); } catch (_err) { /* shown as text */ }
    }
    state.detail = detail;
    renderDetail();
    map.drawEvidence(detail);
    renderMission();
  }

  function renderDetail() {
    const d = state.detail;
    $("detail-empty").hidden = !!d;
    $("detail").hidden = !d;
    if (!d) {
      $("detail-heading").textContent = t("console.detail_heading");
      fire("detail", null);
      return;
    }
    $("detail-heading").textContent = `${kindLabel(d.kind)}`;
    $("detail-summary").textContent = summaryOf(d);
    const fields = $("detail-fields");
    fields.replaceChildren();
    const start = parseTime(d.start);
    const end = parseTime(d.end);
    const rows = [
      [t("console.f_vehicle"), d.vehicle_id || "—"],
      [t("console.f_severity"), d.severity ? severityLabel(d.severity) : "—"],
      [t("console.f_from"), fmtTime(d.start)],
      [t("console.f_to"), fmtTime(d.end) + (start && end ? `（${fmtDuration((end - start) / 1000)}）` : "")],
      [t("console.f_site"), d.site_id ? siteText(d.site_id) : "—", d.site_id || null],
      [t("console.f_manifest"), d.manifest_id || "—"],
      [t("console.f_trip"), d.trip_id || "—"],
      [t("console.f_location"), Number.isFinite(d.lon) && Number.isFinite(d.lat)
        ? `${d.lon.toFixed(5)}, ${d.lat.toFixed(5)}` : "—"],
      [t("console.f_alert_id"), d.alert_id],
    ];
    // Sites by name, their id on hover.
    for (const [k, v, id] of rows) fields.append(el("dt", { text: k }), el("dd", { text: v, title: id || null }));

    const ev = $("detail-evidence");
    ev.replaceChildren();
    const evidence = d.evidence;
    if (evidence && typeof evidence === "object" && !Array.isArray(evidence)) {
      const keys = Object.keys(evidence);
      if (!keys.length) ev.append(el("dt", { text: "—" }), el("dd", { text: t("console.no_evidence") }));
      for (const k of keys) {
        let text;
        if (k === "track") {
          const pts = evidenceTrack(evidence);
          const raw = Array.isArray(evidence.track) ? evidence.track : [];
          const t0 = raw.length && Array.isArray(raw[0]) ? raw[0][2] : null;
          const t1 = raw.length && Array.isArray(raw[raw.length - 1]) ? raw[raw.length - 1][2] : null;
          text = t("console.track_points", { n: pts.length }) + (t0 && t1 ? `, ${fmtTime(t0)} – ${fmtTime(t1)}` : "")
            + t("console.track_on_map");
        } else {
          text = fmtValue(k, evidence[k]);
        }
        const idHover = /site_id$/.test(k) && typeof evidence[k] === "string" ? evidence[k] : null;
        ev.append(el("dt", { text: humanKey(k) }), el("dd", { text, "data-key": k, title: idHover }));
      }
    } else if (evidence !== undefined && evidence !== null) {
      ev.append(el("dt", { text: t("console.evidence") }), el("dd", { text: String(evidence) }));
    }

    const chip = $("detail-status");
    chip.textContent = statusLabel(d.status);
    chip.dataset.status = d.status || "";
    for (const b of document.querySelectorAll(".status-btn")) {
      const current = b.dataset.status === d.status;
      b.setAttribute("aria-pressed", current ? "true" : "false");
      b.disabled = current;
    }
    const hist = $("detail-history");
    hist.replaceChildren();
    for (const h of Array.isArray(d.history) ? d.history : []) {
      const li = el("li", {},
        el("strong", { text: statusLabel(h.status) }),
        t("console.history_by", { by: h.by || "?", at: fmtTime(h.at) }));
      if (h.note) li.append(el("span", { class: "note", text: ` — ${h.note}` }));
      hist.append(li);
    }
    fire("detail", d);
  }

  async function changeStatus(status) {
    const d = state.detail;
    if (!d) return;
    const note = $("status-note").value.trim();
    const body = { status };
    if (note) body.note = note;
    if (Number.isInteger(d.status_version)) body.expected_version = d.status_version;
    const buttons = [...document.querySelectorAll(".status-btn")];
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const updated = await api(`api/alerts/${encodeURIComponent(d.alert_id)}/status`, { method: "POST", body });
      $("status-note").value = "";
      showMessage("");
      if (state.selectedId === updated.alert_id) {
        if (typeof updated.evidence === "string") {
          try { updated.evidence = JSON.parse(updated.evidence); } catch (_err) { /* text */ }
        }
        state.detail = { ...d, ...updated };
        renderDetail();
      }
      upsertAlert(stripDetail(updated));
      announce(t("console.status_set", { status: statusLabel(updated.status) }));
    } catch (err) {
      if (err.status === 409) {
        showMessage(t("console.conflict"), "info");
        await loadDetail(d.alert_id).catch(() => {});
      } else if (err.status === 403) {
        showMessage(t("console.forbidden_status"));
      } else {
        showMessage(t("console.status_failed", { error: err.message }));
      }
      renderDetail();
    }
  }

  function stripDetail(d) {
    const { evidence: _e, history: _h, ...rest } = d;
    return rest;
  }

  // --------------------------------------------------------------- missions
  // Progress keys vary with the flight link's version: accept the usual spellings.
  const PROGRESS_KEYS = {
    reached: ["items_reached", "reached", "item_reached", "last_reached", "reached_count"],
    total: ["items_total", "total_items", "item_count", "items", "total", "mission_count"],
    current: ["current_item", "item", "current", "mission_current", "current_seq", "seq"],
    battery: ["battery_pct", "battery_remaining_pct", "battery_remaining", "battery_percent", "battery"],
    phase: ["phase"],
  };
  const LIVE_ONLY = new Set(["mode", "armed"]);
  const PROGRESS_LABELS = new Set(["t_s", "mode", "armed", "photos"]);
  const POSITION_KEYS = ["position", "lat_deg", "lon_deg", "lat", "lon", "alt_rel_m", "alt_m"];
  const ESTIMATE_KEYS = ["distance_total_m", "duration_s", "battery_used_pct", "planned_start"];

  function progressOf(m) {
    const p = (m && m.progress && typeof m.progress === "object") ? m.progress : {};
    const pick = (keys) => {
      for (const k of keys) {
        if (p[k] !== undefined && p[k] !== null) return p[k];
      }
      return undefined;
    };
    const out = { raw: p };
    for (const [name, keys] of Object.entries(PROGRESS_KEYS)) out[name] = pick(keys);
    out.position = dronePosition(p);
    return out;
  }

  /** [lon, lat] of the drone from a progress record, or null. */
  function dronePosition(p) {
    const from = (o) => {
      if (!o || typeof o !== "object") return null;
      if (Array.isArray(o)) return null; // ambiguous order: ignore
      const lat = Number(o.lat_deg ?? o.lat);
      const lon = Number(o.lon_deg ?? o.lon);
      return isLonLat([lon, lat]) && !(lat === 0 && lon === 0) ? [lon, lat] : null;
    };
    return from(p.position) || from(p);
  }

  function countOf(v) {
    if (Array.isArray(v)) return v.length;
    const n = Number(v);
    return v === undefined || v === null || v === "" || !Number.isFinite(n) ? NaN : n;
  }

  /** A QGroundControl .plan as {path: [[lon, lat], ...] (home, nav items, home on RTL),
   *  items: number of mission items (home not counted)}. */
  function planInfo(plan) {
    const mission = plan && plan.mission;
    if (!mission || !Array.isArray(mission.items)) return { path: [], items: 0 };
    const home = Array.isArray(mission.plannedHomePosition) ? mission.plannedHomePosition : null;
    const homeLL = home && isLonLat([home[1], home[0]]) ? [+home[1], +home[0]] : null;
    const out = homeLL ? [homeLL] : [];
    let rtl = false;
    for (const item of mission.items) {
      if (!item || !Array.isArray(item.params)) continue;
      if (item.command === 20) rtl = true; // MAV_CMD_NAV_RETURN_TO_LAUNCH
      const lat = Number(item.params[4]);
      const lon = Number(item.params[5]);
      if (isLonLat([lon, lat]) && !(lat === 0 && lon === 0)) out.push([lon, lat]);
    }
    if (rtl && homeLL) out.push(homeLL);
    return { path: out, items: mission.items.length };
  }

  function showPlan(m) {
    if (!m || m.status === "refused") {
      map.drawPlan(null);
      return;
    }
    if (state.plans.has(m.mission_id)) {
      const info = state.plans.get(m.mission_id);
      map.drawPlan(info ? info.path : null);
      return;
    }
    state.plans.set(m.mission_id, null); // fetch once
    api(`api/missions/${encodeURIComponent(m.mission_id)}/plan`)
      .then((plan) => {
        state.plans.set(m.mission_id, planInfo(plan));
        if (state.shownMissionId === m.mission_id) renderMission();
      })
      .catch(() => { /* no plan (yet): the mission card says why */ });
  }

  function renderMission() {
    const box = $("mission");
    const m = state.shownMissionId ? state.missions.get(state.shownMissionId) : null;
    if (!m || !state.detail || m.alert_id !== state.detail.alert_id) {
      box.hidden = true;
      map.drawDrone(null);
      map.drawPlan(null);
      return;
    }
    showPlan(m);
    box.hidden = false;
    box.dataset.status = m.status || "";
    $("mission-id").textContent = t("console.mission_title", { id: m.mission_id });
    const chip = $("mission-status");
    chip.textContent = missionStatusLabel(m.status);
    chip.dataset.status = m.status || "";
    const pr = progressOf(m);
    const bar = $("mission-progress");
    // items_reached is a list of mission sequence numbers (MISSION_ITEM_REACHED) or a count.
    const reachedSeqs = Array.isArray(pr.reached)
      ? [...new Set(pr.reached.map(Number).filter(Number.isFinite))] : null;
    const reached = reachedSeqs ? reachedSeqs.length : countOf(pr.reached);
    const lastSeq = reachedSeqs && reachedSeqs.length ? Math.max(...reachedSeqs) : NaN;
    const current = Number(pr.current);
    const info = state.plans.get(m.mission_id);
    // Items on the vehicle: the plan's items (home is item 0 and not counted), else the link's total.
    let total = info && info.items ? info.items : countOf(pr.total);
    if (!Number.isFinite(total) || total <= 0) total = NaN;
    const terminal = MISSION_TERMINAL.has(m.status);
    if (m.status === "completed") {
      bar.max = 1;
      bar.value = 1;
    } else if (Number.isFinite(total)) {
      const done = Math.max(Number.isFinite(lastSeq) ? lastSeq : 0,
        Number.isFinite(current) ? current - 1 : 0,
        !reachedSeqs && Number.isFinite(reached) ? reached : 0);
      bar.max = total;
      bar.value = Math.min(Math.max(done, 0), total);
    } else {
      bar.max = 1;
      bar.value = 0;
    }
    const fields = $("mission-fields");
    fields.replaceChildren();
    const ofTotal = Number.isFinite(total) ? t("console.m_of_total", { total }) : "";
    // [data-field id, label, value]
    const rows = [["dock", t("console.m_dock"), m.dock_site_id ? siteText(m.dock_site_id) : "—"]];
    if (pr.phase !== undefined && pr.phase !== m.status && !terminal) {
      rows.push(["phase", t("console.m_phase"), missionStatusLabel(String(pr.phase))]);
    }
    if (Number.isFinite(reached)) {
      let text = String(reached);
      if (Number.isFinite(lastSeq)) text += t("console.m_last_item", { seq: lastSeq, of: ofTotal });
      rows.push(["items-reached", t("console.m_items_reached"), text]);
    }
    if (Number.isFinite(current) && !terminal) {
      rows.push(["current-item", t("console.m_current_item"), String(current) + ofTotal]);
    }
    if (pr.battery !== undefined && Number.isFinite(Number(pr.battery))) {
      rows.push(["battery", t("console.m_battery"), fmtNumber(Number(pr.battery), 0) + " %"]);
    }
    if (pr.position && m.status !== "completed") {
      const alt = Number(pr.raw.alt_rel_m ?? (pr.raw.position && pr.raw.position.alt_rel_m));
      rows.push(["drone-at", t("console.m_drone_at"), `${pr.position[0].toFixed(5)}, ${pr.position[1].toFixed(5)}`
        + (Number.isFinite(alt) ? t("console.m_above_dock", { alt: fmtNumber(alt, 0) }) : "")]);
    }
    // reason_code / reason_params: shown as the mission's note (renderReason), not as a field
    const known = new Set([...Object.values(PROGRESS_KEYS).flat(), ...POSITION_KEYS, "reason_code"]);
    for (const [k, v] of Object.entries(pr.raw)) {
      if (known.has(k) || v === null || v === undefined || typeof v === "object") continue;
      if (terminal && LIVE_ONLY.has(k)) continue; // mode / armed of a flight that is over
      const label = PROGRESS_LABELS.has(k) ? t(`console.m_${k}`) : humanKey(k);
      rows.push([k.replace(/_/g, "-"), label, fmtValue(k, v)]);
    }
    const estimate = pr.raw.estimate;
    if (estimate && typeof estimate === "object") {
      for (const k of ESTIMATE_KEYS) {
        if (estimate[k] !== undefined && estimate[k] !== null) {
          rows.push(["estimate-" + k.replace(/_/g, "-"), t(`console.m_${k}`), fmtValue(k, estimate[k])]);
        }
      }
    }
    for (const [id, label, v] of rows) {
      fields.append(el("dt", { text: label }), el("dd", {
        text: v, "data-field": id, title: id === "dock" ? m.dock_site_id || null : null,
      }));
    }
    const reason = $("mission-reason");
    const reasonWords = missionReasonText(m);
    reason.hidden = !reasonWords;
    reason.textContent = reasonWords;
    // a completed (or still running) mission's note is information, not an error
    reason.classList.toggle("note", !["failed", "aborted", "refused"].includes(m.status));
    $("mission-abort").hidden = terminal;
    $("send-drone").disabled = !terminal;
    // A completed flight has landed at its dock; otherwise show where it was last seen.
    map.drawDrone(m.status === "completed" ? null : pr.position);
  }

  /** A drone-room reason {code, params} in the current language (catalog "reason.<code>"),
   *  by the rules of haulwatch/drone/reasons.py: *_utc params are times in the dataset zone,
   *  kind/severity/refusal/state/outcome in words, docks by name, "parts" joined, "notes"
   *  each after the separator, nested reasons rendered. null without a known code. */
  function renderReason(code, params) {
    if (!code || tOr("reason." + code, null) === null) return null;
    const sep = state.lang === "en" ? "; " : "；";
    const sub = (r) => (r && typeof r === "object" ? renderReason(r.code, r.params) || "" : "");
    const out = {};
    for (const [name, v] of Object.entries(params || {})) {
      if ((name === "parts" || name === "notes") && Array.isArray(v)) {
        const texts = v.map(sub);
        out[name] = name === "parts" ? texts.join(sep) : texts.map((x) => sep + x).join("");
      } else if (v && typeof v === "object" && v.code) out[name] = sub(v);
      else if (name.endsWith("_utc")) out[name] = v ? fmtTime(v) : "—";
      else if (name === "kind") out[name] = v ? kindLabel(v) : t("reason.any_alert");
      else if (name === "severity") out[name] = v ? tOr("severity." + v, String(v)) : "";
      else if (name === "refusal") out[name] = tOr("refusal." + v, String(v));
      else if (name === "state") out[name] = tOr("fleet.state." + v, String(v));
      else if (name === "outcome") out[name] = tOr("mission_status." + v, String(v));
      else if (name === "dock") {
        const named = siteText(v); // the nest's name (e.g. 机巢甲), else "机巢 <id>"
        out[name] = named && named !== String(v) ? named : t("reason.dock_label", { dock: v });
      }
      else out[name] = v === null || v === undefined ? "" : v;
    }
    return t("reason." + code, out);
  }

  /** The reason of a mission: its code + params in words when the service sent them, else
   *  the text (reasonText). */
  function missionReasonText(m) {
    const pr = (m && m.progress) || {};
    return renderReason(pr.reason_code, pr.reason_params) || reasonText(m && m.reason);
  }

  /** "code: message" of a refused or failed mission, the code in words (the message as the
   *  service wrote it: distances, times). */
  function reasonText(reason) {
    const text = String(reason || "");
    const m = /^([a-z_]+):\s*(.*)$/s.exec(text);
    if (!m) return text;
    const word = tOr("refusal." + m[1], null);
    return word ? word + (state.lang === "en" ? ": " : "：") + m[2] : text;
  }

  const MISSION_RANK = { planned: 0, uploading: 1, flying: 2, completed: 3, failed: 3, aborted: 3, refused: 3 };

  /** True when ``m`` is older than what we hold (answers and stream events may cross). */
  function missionIsStale(prev, m) {
    if (!prev || !prev.mission_id) return false;
    const tp = Date.parse(prev.updated || "");
    const tm = Date.parse(m.updated || "");
    if (Number.isFinite(tp) && Number.isFinite(tm) && tp !== tm) return tm < tp;
    return (MISSION_RANK[m.status] ?? 0) < (MISSION_RANK[prev.status] ?? 0);
  }

  function upsertMission(m) {
    if (!m || !m.mission_id) return;
    const prev = state.missions.get(m.mission_id) || {};
    if (missionIsStale(prev, m)) return;
    const merged = { ...prev, ...m };
    state.missions.set(m.mission_id, merged);
    fire("mission", merged);
    if (state.detail && merged.alert_id === state.detail.alert_id) {
      if (!state.shownMissionId || state.shownMissionId === merged.mission_id
        || MISSION_TERMINAL.has((state.missions.get(state.shownMissionId) || {}).status)) {
        state.shownMissionId = merged.mission_id;
      }
      renderMission();
      if (MISSION_TERMINAL.has(merged.status) && !MISSION_TERMINAL.has(prev.status)) {
        announce(t("console.mission_announce", { id: merged.mission_id, status: missionStatusLabel(merged.status) }));
      }
    }
  }

  async function loadMissionsFor(alertId) {
    state.shownMissionId = null;
    $("send-drone").disabled = false;
    $("dispatch-error").hidden = true;
    renderMission();
    try {
      const data = await api("api/missions" + query({ alert_id: alertId }));
      const list = Array.isArray(data) ? data : (data && Array.isArray(data.items) ? data.items : []);
      const mine = list.filter((m) => m && m.alert_id === alertId);
      if (state.selectedId !== alertId) return;
      for (const m of mine) state.missions.set(m.mission_id, { ...(state.missions.get(m.mission_id) || {}), ...m });
      // Newest first (whatever order the service lists them in); prefer one still running.
      const when = (m) => {
        const t = Date.parse(m.created || m.updated || "");
        return Number.isFinite(t) ? t : -Infinity;
      };
      mine.sort((a, b) => when(b) - when(a));
      const pick = mine.find((m) => !MISSION_TERMINAL.has(m.status)) || mine[0];
      if (pick) state.shownMissionId = pick.mission_id;
      renderMission();
    } catch (_err) {
      // Missions are optional for the page (an analyst may not list them).
    }
  }

  async function sendDrone() {
    const d = state.detail;
    if (!d) return;
    const btn = $("send-drone");
    const errBox = $("dispatch-error");
    errBox.hidden = true;
    btn.disabled = true;
    const dock = $("dock-select").value;
    try {
      const m = await api(`api/alerts/${encodeURIComponent(d.alert_id)}/dispatch`, {
        method: "POST", body: dock ? { dock_site_id: dock } : {},
      });
      state.shownMissionId = m.mission_id;
      upsertMission(m);
      $("mission").scrollIntoView({ block: "nearest" });
      fitAlertAndDock(d, m.dock_site_id);
      announce(t("console.mission_announce", { id: m.mission_id, status: missionStatusLabel(m.status) }));
      watchMission(m.mission_id);
    } catch (err) {
      let text = err.message;
      if (err.status === 422) {
        // The service names the refusal (out_of_range, battery, no_fly, daylight...) and says why.
        const items = err.body && Array.isArray(err.body.detail) ? err.body.detail : [];
        const why = items.map((i) => (i && i.msg ? String(i.msg) : "")).filter(Boolean).join("; ");
        const code = items.map((i) => (i && typeof i.type === "string" ? i.type : "")).find(Boolean);
        const coded = items.map((i) => (i ? renderReason(i.code, i.params) : null)).find(Boolean);
        text = t("console.dispatch_refused", {
          // the rendered reason already starts with the refusal in words
          code: code && !coded ? `（${tOr("refusal." + code, code.replace(/_/g, " "))}）` : "",
          why: coded || why || err.message,
        });
      }
      else if (err.status === 403) text = t("console.dispatch_forbidden");
      else if (err.status === 409) text = t("console.dispatch_busy", { error: err.message });
      errBox.textContent = text;
      errBox.hidden = false;
      errBox.scrollIntoView({ block: "nearest" });
      btn.disabled = false;
    }
  }

  /** Show the alert and the dock the drone takes off from. */
  function fitAlertAndDock(detail, dockId) {
    const pts = [...positions(detail.geometry), ...evidenceTrack(detail.evidence)];
    if (Number.isFinite(detail.lon) && Number.isFinite(detail.lat)) pts.push([detail.lon, detail.lat]);
    const dock = ((state.sites && state.sites.features) || []).find(
      (f) => f.properties && f.properties.site_id === dockId);
    if (dock) positions(dock.geometry, pts);
    map.fitBounds(boundsOf(pts), { padPx: 60, minSpanM: 600 });
  }

  /** Poll a mission while the stream is down, so progress never freezes silently. */
  function watchMission(missionId) {
    if (state.missionPoll) window.clearInterval(state.missionPoll);
    state.missionPoll = window.setInterval(async () => {
      const m = state.missions.get(missionId);
      if (!m || MISSION_TERMINAL.has(m.status) || !state.token) {
        window.clearInterval(state.missionPoll);
        state.missionPoll = null;
        return;
      }
      if (state.stream && state.stream.readyState === EventSource.OPEN) return;
      try {
        upsertMission(await api("api/missions/" + encodeURIComponent(missionId)));
      } catch (_err) { /* keep trying while the mission runs */ }
    }, 3000);
  }

  async function abortMission() {
    const m = state.shownMissionId && state.missions.get(state.shownMissionId);
    if (!m) return;
    try {
      upsertMission(await api(`api/missions/${encodeURIComponent(m.mission_id)}/abort`, { method: "POST" }));
    } catch (err) {
      showMessage(t("console.abort_failed", { error: err.message }));
    }
  }

  async function downloadPlan() {
    const m = state.shownMissionId && state.missions.get(state.shownMissionId);
    if (!m) return;
    try {
      const plan = await api(`api/missions/${encodeURIComponent(m.mission_id)}/plan`);
      const blob = new Blob([JSON.stringify(plan, null, 2)], { type: "application/json" });
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: `${m.mission_id}.plan` });
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (err) {
      showMessage(t("console.no_plan", { error: err.message }));
    }
  }

  // ----------------------------------------------------------------- stream
  const CONN_KEYS = {
    offline: "console.conn_offline", connecting: "console.conn_connecting",
    reconnecting: "console.conn_reconnecting", live: "console.conn_live",
  };

  function setConn(stateName) {
    state.conn = stateName;
    const c = $("conn-status");
    // "reconnecting" is shown as such but is a "connecting" state for the page.
    c.dataset.state = stateName === "reconnecting" ? "connecting" : stateName;
    c.textContent = t(CONN_KEYS[stateName] || CONN_KEYS.offline);
  }

  function parseEvent(e) {
    try {
      return JSON.parse(e.data);
    } catch (_err) {
      return null;
    }
  }

  /** Open the event stream; the promise settles when it is open (or never, on failure). */
  function openStream() {
    closeStream();
    if (!state.token) return Promise.resolve();
    let markOpen;
    const opened = new Promise((resolve) => { markOpen = resolve; });
    setConn("connecting");
    const es = new EventSource("api/stream" + query({ access_token: state.token }));
    state.stream = es;
    es.addEventListener("open", () => {
      markOpen();
      setConn("live");
      state.streamRetryMs = 1000;
      if (state.streamWasOpen) {
        // Events may have been missed while we were away: reload what is shown.
        loadAlerts().catch(() => {});
        if (state.selectedId) {
          const id = state.selectedId;
          loadDetail(id).then(() => loadMissionsFor(id)).catch(() => {});
        }
      }
      state.streamWasOpen = true;
    });
    es.addEventListener("alert", (e) => {
      const a = parseEvent(e);
      if (!a || !a.alert_id) return;
      logStreamAlert(a);
      upsertAlert(a, { fromStream: true });
      if (a.alert_id === state.selectedId) loadDetail(a.alert_id).catch(() => {});
    });
    es.addEventListener("status", (e) => {
      const s = parseEvent(e);
      if (!s || !s.alert_id) return;
      const patch = { alert_id: s.alert_id };
      for (const k of ["status", "status_version"]) if (s[k] !== undefined) patch[k] = s[k];
      if (s.kind) Object.assign(patch, stripDetail(s)); // a full alert was sent
      if (patch.status !== undefined) logStreamAlert(patch);
      if (state.list.some((a) => a.alert_id === s.alert_id) || state.mapAlerts.has(s.alert_id)) {
        upsertAlert(patch);
      } else if (state.filters.status && patch.status === state.filters.status) {
        // It now matches the status filter: fetch it so it joins the list.
        api("api/alerts/" + encodeURIComponent(s.alert_id))
          .then((a) => {
            if (!matchesFilters(a)) return;
            const pub = stripDetail(a);
            logStreamAlert(pub);
            upsertAlert(pub, { fromStream: true });
          })
          .catch(() => {});
      }
      if (s.alert_id === state.selectedId) {
        const d = state.detail;
        const newer = !d || !Number.isInteger(s.status_version) || s.status_version > d.status_version;
        if (newer) loadDetail(s.alert_id).catch(() => {});
      }
    });
    es.addEventListener("mission", (e) => {
      const m = parseEvent(e);
      if (m) upsertMission(m);
    });
    es.addEventListener("error", () => {
      if (state.stream !== es) return;
      if (es.readyState === EventSource.CONNECTING) {
        setConn("reconnecting");
        return;
      }
      // Closed for good by the browser (HTTP error, wrong type): check the token, retry later.
      setConn("offline");
      es.close();
      state.stream = null;
      const wait = state.streamRetryMs;
      state.streamRetryMs = Math.min(state.streamRetryMs * 2, 30000);
      state.streamTimer = window.setTimeout(async () => {
        try {
          await api("api/alerts" + query({ limit: 1 }));
        } catch (err) {
          if (err.status === 401) {
            signOut(t("console.token_refused_stream"));
            return;
          }
        }
        if (state.token) openStream();
      }, wait);
    });
    return opened;
  }

  function closeStream() {
    if (state.streamTimer) window.clearTimeout(state.streamTimer);
    state.streamTimer = null;
    if (state.stream) state.stream.close();
    state.stream = null;
  }

  // ------------------------------------------------------------ registry
  async function loadRegistry() {
    const gen = state.generation;
    const [sites, routes] = await Promise.allSettled([api("api/sites.geojson"), api("api/routes.geojson")]);
    if (gen !== state.generation) return;
    state.sites = sites.status === "fulfilled" && sites.value && sites.value.features ? sites.value : null;
    state.routes = routes.status === "fulfilled" && routes.value && routes.value.features ? routes.value : null;
    fillDocks();
    map.drawRegistry();
  }

  function fillDocks() {
    const dock = $("dock-select");
    const chosen = dock.value;
    dock.replaceChildren(el("option", { value: "", text: t("console.dock_auto") }));
    for (const f of (state.sites && state.sites.features) || []) {
      const p = f.properties || {};
      if (p.kind === "nest" && p.site_id) {
        dock.append(el("option", { value: p.site_id, text: p.name ? `${p.name} (${p.site_id})` : p.site_id }));
      }
    }
    dock.value = chosen;
    if (dock.value !== chosen) dock.value = "";
  }

  /** The dataset's zone and the deployment's base maps. */
  async function loadConsoleConfig() {
    const gen = state.generation;
    let cfg = null;
    try {
      cfg = await api("api/console/config");
    } catch (_err) {
      cfg = null; // an older service: overlays only, default zone
    }
    if (gen !== state.generation) return;
    state.timezone = (cfg && typeof cfg.timezone === "string" && cfg.timezone) || DEFAULT_ZONE;
    makeZoneFormat();
    state.basemaps = cfg && Array.isArray(cfg.basemaps) ? cfg.basemaps : [];
    $("zone-note").textContent = t("common.zone_note", { zone: state.timezone });
    map.setBasemaps(state.basemaps);
  }

  // ---------------------------------------------------------------- session
  async function connect(token) {
    state.token = token;
    state.generation += 1;
    showMessage("");
    try {
      await api("api/alerts" + query({ limit: 1 }));
    } catch (err) {
      state.token = null;
      if (err.status === 401) showMessage(t("console.token_refused"));
      else if (err.status === 403) showMessage(t("console.token_forbidden"));
      else showMessage(t("console.cannot_connect", { error: err.message }));
      return false;
    }
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch (_err) { /* private mode: the session still works until reload */ }
    $("token-form").hidden = true;
    $("session").hidden = false;
    $("token-input").value = "";
    // Listen first, then load: nothing raised between the two is missed (events that
    // overtake the list answer are re-applied to it, see replayStream).
    const opened = openStream();
    await Promise.race([opened, new Promise((resolve) => { window.setTimeout(resolve, 3000); })]);
    await loadConsoleConfig();
    await loadRegistry();
    try {
      await loadAlerts();
    } catch (err) {
      showMessage(t("console.load_alerts_failed", { error: err.message }));
    }
    fire("session", true);
    return true;
  }

  function signOut(message) {
    closeStream();
    if (state.missionPoll) window.clearInterval(state.missionPoll);
    state.missionPoll = null;
    state.generation += 1;
    state.token = null;
    state.streamWasOpen = false;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (_err) { /* ignore */ }
    state.list = [];
    state.total = 0;
    state.mapAlerts = new Map();
    state.selectedId = null;
    state.detail = null;
    state.missions = new Map();
    state.plans = new Map();
    state.shownMissionId = null;
    renderMission();
    renderList();
    renderDetail();
    map.drawMarkers();
    map.drawEvidence(null);
    $("session").hidden = true;
    $("token-form").hidden = false;
    setConn("offline");
    showMessage(message || "");
    fire("session", false);
    $("token-input").focus();
  }

  // ------------------------------------------------------------------ start
  /** Kind and status choices of the filters, in the page's language (values kept). */
  function fillFilterOptions() {
    const kindSelect = $("filter-kind");
    const statusSelect = $("filter-status");
    const kinds = [...new Set([...KINDS, ...[...kindSelect.options].map((o) => o.value).filter(Boolean)])];
    const kind = kindSelect.value;
    const status = statusSelect.value;
    kindSelect.replaceChildren(el("option", { value: "", text: t("console.all_kinds") }),
      ...kinds.map((k) => el("option", { value: k, text: kindLabel(k) })));
    statusSelect.replaceChildren(el("option", { value: "", text: t("console.all_statuses") }),
      ...STATUSES.map((k) => el("option", { value: k, text: statusLabel(k) })));
    kindSelect.value = kind;
    statusSelect.value = status;
  }

  /** Show the whole page in ``lang`` (remembered for the next visit). */
  async function setLanguage(lang, { remember = true } = {}) {
    const next = LANGS.includes(lang) ? lang : "zh-CN";
    try {
      await loadCatalog(next);
    } catch (err) {
      showMessage(t("console.unreachable", { error: err.message }));
      $("lang-select").value = state.lang;
      return;
    }
    state.lang = next;
    $("lang-select").value = next;
    if (remember) {
      try { localStorage.setItem(LANG_KEY, next); } catch (_err) { /* private mode */ }
    }
    applyStaticTexts();
    fillFilterOptions();
    fillDocks();
    map.setControls();
    map.drawRegistry();
    renderList();
    map.drawMarkers();
    renderDetail();
    renderMission();
    fire("lang", next);
  }

  async function init() {
    const kindSelect = $("filter-kind");
    const statusSelect = $("filter-status");
    let lang = "zh-CN";
    try { lang = localStorage.getItem(LANG_KEY) || "zh-CN"; } catch (_err) { lang = "zh-CN"; }
    if (!LANGS.includes(lang)) lang = "zh-CN";
    state.lang = lang;
    $("lang-select").value = lang;
    try {
      await loadCatalog("zh-CN");
      if (lang !== "zh-CN") await loadCatalog(lang);
    } catch (_err) { /* the page's own Chinese texts stay */ }
    makeZoneFormat();
    applyStaticTexts();
    fillFilterOptions();
    $("lang-select").addEventListener("change", (e) => setLanguage(e.target.value));

    map.init();

    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("token-input").value.trim();
      if (token) connect(token);
    });
    $("sign-out").addEventListener("click", () => signOut(""));
    const vehicleInput = $("filter-vehicle");
    const onFilter = () => {
      state.filters = { kind: kindSelect.value, status: statusSelect.value, vehicle_id: vehicleInput.value.trim() };
      state.offset = 0;
      if (state.token) loadAlerts().catch((err) => showMessage(t("console.load_alerts_failed", { error: err.message })));
    };
    kindSelect.addEventListener("change", onFilter);
    let typing = null;
    vehicleInput.addEventListener("input", () => {
      window.clearTimeout(typing);
      typing = window.setTimeout(onFilter, 350);
    });
    $("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      window.clearTimeout(typing);
      onFilter();
    });
    statusSelect.addEventListener("change", onFilter);
    $("page-prev").addEventListener("click", () => {
      state.offset = Math.max(0, state.offset - PAGE_SIZE);
      loadAlerts().catch((err) => showMessage(err.message));
    });
    $("page-next").addEventListener("click", () => {
      state.offset += PAGE_SIZE;
      loadAlerts().catch((err) => showMessage(err.message));
    });
    for (const b of document.querySelectorAll(".status-btn")) {
      b.addEventListener("click", () => changeStatus(b.dataset.status));
    }
    $("send-drone").addEventListener("click", sendDrone);
    $("mission-abort").addEventListener("click", abortMission);
    $("mission-plan").addEventListener("click", downloadPlan);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && state.detail && !e.target.closest("input, select")) {
        state.selectedId = null;
        state.detail = null;
        $("zoom-alert").disabled = true;
        state.shownMissionId = null;
        renderMission();
        renderDetail();
        renderList();
        map.drawMarkers();
        map.drawEvidence(null);
      }
    });

    renderList();
    renderDetail();
    let saved = null;
    try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (_err) { saved = null; }
    if (saved) connect(saved);
    else $("token-input").focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
