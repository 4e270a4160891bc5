/* haulwatch dispatcher console: plain JavaScript, no build step, no external asset.
 *
 * Talks to the haulwatch HTTP API with relative URLs (so the service may sit
 * behind a proxy on a sub-path), keeps the bearer token in sessionStorage, and
 * follows the server-sent event stream for new alerts, status changes and
 * drone missions. Data from the server is only ever put in the page as text
 * (textContent / attributes), never as HTML.
 */
"use strict";

(() => {
  // ---------------------------------------------------------------- constants
  const TOKEN_KEY = "haulwatch.token";
  const PAGE_SIZE = 50;
  const MAP_LIMIT = 500;
  const EARTH_M_PER_DEG = 111320;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const KIND_LABELS = {
    illegal_dump: "Illegal dump · 偷倒",
    route_deviation: "Route deviation · 偏离路线",
    unpermitted_origin: "Unpermitted origin · 黑工地",
    wrong_disposal: "Wrong disposal · 非指定消纳",
    unmanifested_trip: "Unmanifested trip · 无联单",
    manifest_not_executed: "Manifest not executed · 联单未执行",
    gps_gap: "GPS gap · 信号中断",
    unregistered_vehicle: "Unregistered vehicle · 未备案车辆",
    dump_hotspot: "Dump hotspot · 黑消纳场",
  };
  const STATUS_LABELS = {
    open: "Open",
    acknowledged: "Acknowledged",
    confirmed: "Confirmed",
    dismissed: "Dismissed",
  };
  const MISSION_TERMINAL = new Set(["completed", "failed", "aborted", "refused"]);
  const SITE_KINDS = new Set(["origin", "disposal", "depot", "nest", "no_fly"]);

  // -------------------------------------------------------------------- state
  const state = {
    token: null,
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
  };

  const $ = (id) => document.getElementById(id);

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
    const headers = { Accept: "application/json" };
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
      throw new ApiError(0, "The service cannot be reached (" + err.message + ")", null);
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

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined) continue;
      node.setAttribute(k, String(v));
    }
    return node;
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const timeZoneName = (() => {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (_err) {
      return "";
    }
  })();

  function parseTime(iso) {
    if (!iso) return null;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function fmtTime(iso) {
    const d = parseTime(iso);
    return d ? timeFormat.format(d) : iso ? String(iso) : "—";
  }

  function fmtDuration(seconds) {
    if (!Number.isFinite(seconds)) return "—";
    const s = Math.round(Math.abs(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const r = s % 60;
    if (h) return `${h} h ${m} min`;
    if (m) return r ? `${m} min ${r} s` : `${m} min`;
    return `${r} s`;
  }

  function fmtNumber(x, digits = 1) {
    return Number(x).toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function fmtDistance(m) {
    if (!Number.isFinite(m)) return "—";
    return Math.abs(m) >= 1000 ? fmtNumber(m / 1000, 2) + " km" : fmtNumber(m, 0) + " m";
  }

  function kindLabel(kind) {
    return KIND_LABELS[kind] || String(kind || "unknown");
  }

  function statusLabel(status) {
    return STATUS_LABELS[status] || String(status || "unknown");
  }

  function humanKey(key) {
    // The unit is in the formatted value: drop it from the label (stop_duration_s -> Stop duration).
    const base = String(key).replace(/_(m_s|s|min|m|km|kmh|pct|percent|m3|deg)$/, "");
    const s = (base || String(key)).replace(/_/g, " ");
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
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "string") {
      if (/(^|_)(time|at|start|end|from|to)$/.test(k) && parseTime(value)) return fmtTime(value);
      return value;
    }
    if (Array.isArray(value) && value.every((v) => typeof v !== "object" || v === null)) {
      return value.map((v) => fmtValue("", v)).join(", ");
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

  // ------------------------------------------------------------- projection
  /** A local equirectangular projection in metres around the area's centre. */
  const proj = {
    lon0: null,
    lat0: null,
    kx: EARTH_M_PER_DEG,
    ky: EARTH_M_PER_DEG,
    ready() { return this.lon0 !== null; },
    setOrigin(lon, lat) {
      this.lon0 = lon;
      this.lat0 = lat;
      this.kx = EARTH_M_PER_DEG * Math.cos((lat * Math.PI) / 180);
    },
    fwd(lon, lat) { return [(lon - this.lon0) * this.kx, -(lat - this.lat0) * this.ky]; },
    inv(x, y) { return [x / this.kx + this.lon0, -y / this.ky + this.lat0]; },
  };

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

  function ringPath(ring, close) {
    let d = "";
    ring.forEach((c, i) => {
      if (!isLonLat(c)) return;
      const [x, y] = proj.fwd(+c[0], +c[1]);
      d += (d ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      if (i === ring.length - 1 && close) d += "Z";
    });
    return d;
  }

  /** SVG path data (world metres) of the lines and polygons of a geometry. */
  function geomPath(geom) {
    if (!geom || !geom.type) return { d: "", area: false };
    switch (geom.type) {
      case "LineString": return { d: ringPath(geom.coordinates || [], false), area: false };
      case "MultiLineString":
        return { d: (geom.coordinates || []).map((l) => ringPath(l, false)).join(""), area: false };
      case "Polygon":
        return { d: (geom.coordinates || []).map((r) => ringPath(r, true)).join(""), area: true };
      case "MultiPolygon":
        return {
          d: (geom.coordinates || []).flatMap((p) => p.map((r) => ringPath(r, true))).join(""),
          area: true,
        };
      case "GeometryCollection": {
        const parts = (geom.geometries || []).map(geomPath);
        return { d: parts.map((p) => p.d).join(""), area: parts.some((p) => p.area) };
      }
      default: return { d: "", area: false };
    }
  }

  // ---------------------------------------------------------------- the map
  const map = {
    svg: null,
    world: null,
    scale: 0.05, // screen px per world metre
    tx: 0,
    ty: 0,
    markers: [], // {node, wx, wy, r}
    evidenceMarks: [],
    droneMark: null,
    labels: [],
    fitted: false,
    drag: null,
    lastSize: [1, 1],

    init() {
      this.svg = $("map");
      this.world = $("map-world");
      const s = this.svg;
      s.addEventListener("wheel", (e) => {
        e.preventDefault();
        const [px, py] = this.pointer(e);
        this.zoomAt(px, py, Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)));
      }, { passive: false });
      s.addEventListener("pointerdown", (e) => {
        if (e.button !== 0) return;
        this.drag = { x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty, moved: false, id: e.pointerId };
      });
      s.addEventListener("pointermove", (e) => {
        const [px, py] = this.pointer(e);
        if (proj.ready()) {
          const [lon, lat] = proj.inv((px - this.tx) / this.scale, (py - this.ty) / this.scale);
          $("cursor-pos").textContent = lon.toFixed(5) + ", " + lat.toFixed(5);
        }
        const d = this.drag;
        if (!d || d.id !== e.pointerId) return;
        const dx = e.clientX - d.x;
        const dy = e.clientY - d.y;
        if (!d.moved && Math.hypot(dx, dy) < 4) return;
        if (!d.moved) {
          d.moved = true;
          s.setPointerCapture(e.pointerId);
          s.classList.add("dragging");
        }
        this.tx = d.tx + dx;
        this.ty = d.ty + dy;
        this.apply();
      });
      const end = (e) => {
        const d = this.drag;
        if (!d || d.id !== e.pointerId) return;
        if (d.moved) {
          s.classList.remove("dragging");
          // Swallow the click that ends a drag, so panning never selects a marker.
          const swallow = (ev) => { ev.stopPropagation(); ev.preventDefault(); };
          s.addEventListener("click", swallow, { capture: true, once: true });
          window.setTimeout(() => s.removeEventListener("click", swallow, { capture: true }), 0);
        }
        this.drag = null;
      };
      s.addEventListener("pointerup", end);
      s.addEventListener("pointercancel", end);
      s.addEventListener("dblclick", (e) => {
        const [px, py] = this.pointer(e);
        this.zoomAt(px, py, 2);
      });
      s.addEventListener("keydown", (e) => {
        const step = 80;
        const [w, h] = this.size();
        let handled = true;
        switch (e.key) {
          case "ArrowLeft": this.tx += step; break;
          case "ArrowRight": this.tx -= step; break;
          case "ArrowUp": this.ty += step; break;
          case "ArrowDown": this.ty -= step; break;
          case "+": case "=": this.zoomAt(w / 2, h / 2, 1.5); return e.preventDefault();
          case "-": case "_": this.zoomAt(w / 2, h / 2, 1 / 1.5); return e.preventDefault();
          case "0": this.fitAll(); return e.preventDefault();
          default: handled = false;
        }
        if (handled) {
          e.preventDefault();
          this.apply();
        }
      });
      $("zoom-in").addEventListener("click", () => {
        const [w, h] = this.size();
        this.zoomAt(w / 2, h / 2, 1.5);
      });
      $("zoom-out").addEventListener("click", () => {
        const [w, h] = this.size();
        this.zoomAt(w / 2, h / 2, 1 / 1.5);
      });
      $("zoom-fit").addEventListener("click", () => this.fitAll());
      $("zoom-alert").addEventListener("click", () => this.fitSelected());
      this.lastSize = this.size();
      if (window.ResizeObserver) {
        new ResizeObserver(() => {
          const now = this.size();
          // Keep the centre where it was (fitBounds records the size it fitted for).
          this.tx += (now[0] - this.lastSize[0]) / 2;
          this.ty += (now[1] - this.lastSize[1]) / 2;
          this.lastSize = now;
          this.apply();
        }).observe(s);
      }
    },

    size() {
      const r = this.svg.getBoundingClientRect();
      return [Math.max(r.width, 1), Math.max(r.height, 1)];
    },

    pointer(e) {
      const r = this.svg.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    },

    zoomAt(px, py, factor) {
      const next = Math.min(Math.max(this.scale * factor, 1e-5), 50);
      const f = next / this.scale;
      this.tx = px - (px - this.tx) * f;
      this.ty = py - (py - this.ty) * f;
      this.scale = next;
      this.apply();
    },

    /** Show a lon/lat bounding box, with a margin in screen pixels. */
    fitBounds(b, { padPx = 40, minSpanM = 400 } = {}) {
      if (!b || !proj.ready()) return;
      const [x0, y1] = proj.fwd(b[0], b[1]);
      const [x1, y0] = proj.fwd(b[2], b[3]);
      const spanX = Math.max(x1 - x0, minSpanM);
      const spanY = Math.max(y1 - y0, minSpanM);
      const [w, h] = this.size();
      this.lastSize = [w, h];
      const pad = Math.min(padPx, w / 4, h / 4);
      this.scale = Math.min((w - 2 * pad) / spanX, (h - 2 * pad) / spanY);
      if (!Number.isFinite(this.scale) || this.scale <= 0) this.scale = 0.05;
      this.tx = w / 2 - ((x0 + x1) / 2) * this.scale;
      this.ty = h / 2 - ((y0 + y1) / 2) * this.scale;
      this.apply();
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

    /** Make sure the projection has an origin; returns false when nothing to centre on. */
    ensureOrigin(points) {
      if (proj.ready()) return true;
      const b = boundsOf(points);
      if (!b) return false;
      proj.setOrigin((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
      return true;
    },

    apply() {
      const s = this.scale;
      this.world.setAttribute("transform", `matrix(${s} 0 0 ${s} ${this.tx} ${this.ty})`);
      for (const m of [...this.markers, ...this.evidenceMarks]) this.place(m);
      if (this.droneMark) this.place(this.droneMark);
      const showLabels = s > 0.12 || this.labels.length <= 30;
      for (const l of this.labels) {
        const visible = showLabels || l.always;
        l.node.setAttribute("visibility", visible ? "visible" : "hidden");
        if (visible) this.place(l);
      }
      this.updateScaleBar();
    },

    place(m) {
      const x = m.wx * this.scale + this.tx;
      const y = m.wy * this.scale + this.ty;
      if (m.node.tagName === "text") {
        m.node.setAttribute("x", x.toFixed(1));
        m.node.setAttribute("y", y.toFixed(1));
      } else if (m.node.tagName === "rect") {
        m.node.setAttribute("x", (x - m.r).toFixed(1));
        m.node.setAttribute("y", (y - m.r).toFixed(1));
      } else {
        m.node.setAttribute("cx", x.toFixed(1));
        m.node.setAttribute("cy", y.toFixed(1));
      }
    },

    updateScaleBar() {
      const targetM = 100 / this.scale;
      const p = Math.pow(10, Math.floor(Math.log10(targetM)));
      const nice = [1, 2, 5, 10].map((f) => f * p).filter((v) => v <= targetM).pop() || p;
      $("scale-bar").style.width = Math.round(nice * this.scale) + "px";
      $("scale-label").textContent = fmtDistance(nice);
    },

    drawRegistry() {
      const sitesLayer = $("layer-sites");
      const routesLayer = $("layer-routes");
      const labelsLayer = $("layer-labels");
      sitesLayer.replaceChildren();
      routesLayer.replaceChildren();
      labelsLayer.replaceChildren();
      this.labels = [];
      const all = [];
      if (state.sites) positions(state.sites, all);
      if (state.routes) positions(state.routes, all);
      if (!this.ensureOrigin(all)) return;
      for (const f of (state.routes && state.routes.features) || []) {
        const p = f.properties || {};
        const { d } = geomPath(f.geometry);
        if (!d) continue;
        const corridor = Number(p.corridor_m);
        if (Number.isFinite(corridor) && corridor > 0) {
          // The corridor band is drawn in world metres, so it scales with the map.
          routesLayer.append(svg("path", { d, class: "corridor", "stroke-width": 2 * corridor }));
        }
        const path = svg("path", {
          d, class: "route", "vector-effect": "non-scaling-stroke", "data-route-id": p.route_id,
        });
        const title = svg("title");
        title.textContent = `Route ${p.route_id || "?"}: ${p.origin_site_id || "?"} → ${p.disposal_site_id || "?"}`
          + (Number.isFinite(corridor) ? ` (corridor ±${fmtDistance(corridor)})` : "");
        path.append(title);
        routesLayer.append(path);
      }
      for (const f of (state.sites && state.sites.features) || []) {
        const p = f.properties || {};
        const { d } = geomPath(f.geometry);
        if (!d) continue;
        const kind = SITE_KINDS.has(p.kind) ? p.kind : "other";
        const path = svg("path", {
          d, class: `site site-${kind}`, "fill-rule": "evenodd",
          "vector-effect": "non-scaling-stroke", "data-site-id": p.site_id, "data-kind": p.kind,
        });
        const title = svg("title");
        const permit = p.permit_from || p.permit_to
          ? `, permit ${p.permit_from || "…"} – ${p.permit_to || "…"}` : "";
        title.textContent = `${p.name || p.site_id || "?"} (${p.site_id || "?"}, ${p.kind || "?"}${permit})`;
        path.append(title);
        sitesLayer.append(path);
        const b = boundsOf(positions(f.geometry));
        if (b) {
          if (kind === "nest") {
            // Docks are small: a fixed-size symbol keeps them visible at every zoom.
            const [cx, cy] = proj.fwd((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
            const icon = svg("rect", { width: 10, height: 10, class: "nest-icon", "data-site-id": p.site_id });
            labelsLayer.append(icon);
            this.labels.push({ node: icon, wx: cx, wy: cy, r: 5, always: true });
          }
          // Under the site, so the label never hides the polygon or an alert on it.
          const [wx, wy] = proj.fwd((b[0] + b[2]) / 2, b[1]);
          const text = svg("text", { class: "site-label", "text-anchor": "middle", dy: 13 });
          text.textContent = p.name || p.site_id || "";
          labelsLayer.append(text);
          this.labels.push({ node: text, wx, wy });
        }
      }
      this.apply();
    },

    drawMarkers() {
      const layer = $("layer-markers");
      layer.replaceChildren();
      this.markers = [];
      const alerts = [...state.mapAlerts.values()].filter(
        (a) => Number.isFinite(a.lon) && Number.isFinite(a.lat));
      if (!this.ensureOrigin(alerts.map((a) => [a.lon, a.lat]))) return;
      const sevRank = { low: 0, medium: 1, high: 2 };
      // High severity on top; the selected alert last of all.
      alerts.sort((a, b) => (sevRank[a.severity] ?? 0) - (sevRank[b.severity] ?? 0)
        || (a.alert_id === state.selectedId) - (b.alert_id === state.selectedId));
      for (const a of alerts) {
        const [wx, wy] = proj.fwd(a.lon, a.lat);
        const selected = a.alert_id === state.selectedId;
        const node = svg("circle", {
          r: selected ? 9 : 6,
          class: `marker sev-${a.severity || "low"} status-${a.status || "open"}${selected ? " selected" : ""}`,
          "data-alert-id": a.alert_id,
        });
        const title = svg("title");
        title.textContent = `${kindLabel(a.kind)} — ${a.vehicle_id || "no vehicle"} — ${statusLabel(a.status)}`;
        node.append(title);
        node.addEventListener("click", () => selectAlert(a.alert_id, { fromMap: true }));
        layer.append(node);
        const m = { node, wx, wy };
        this.markers.push(m);
        this.place(m);
      }
      if (!this.fitted && (state.sites || alerts.length)) {
        this.fitted = true;
        this.fitAll();
      }
    },

    /** The planned flight path ([[lon, lat], ...] from the mission's .plan), or none. */
    drawPlan(path) {
      const layer = $("layer-plan");
      layer.replaceChildren();
      if (!path || path.length < 2 || !proj.ready()) return;
      layer.append(svg("path", {
        d: ringPath(path, false), class: "plan-path", "vector-effect": "non-scaling-stroke",
        "data-points": path.length,
      }));
    },

    /** The drone's last reported position (from mission progress), or none. */
    drawDrone(pos) {
      const layer = $("layer-drone");
      layer.replaceChildren();
      this.droneMark = null;
      if (!pos || !proj.ready()) return;
      const node = svg("circle", { r: 7, class: "drone", "data-lon": pos[0], "data-lat": pos[1] });
      const title = svg("title");
      title.textContent = `Drone at ${pos[0].toFixed(5)}, ${pos[1].toFixed(5)}`;
      node.append(title);
      layer.append(node);
      const [wx, wy] = proj.fwd(pos[0], pos[1]);
      this.droneMark = { node, wx, wy };
      this.place(this.droneMark);
    },

    drawEvidence(detail) {
      const lines = $("layer-evidence");
      const points = $("layer-evidence-points");
      lines.replaceChildren();
      points.replaceChildren();
      this.evidenceMarks = [];
      if (!detail) return;
      const track = evidenceTrack(detail.evidence);
      const all = [...positions(detail.geometry), ...track];
      if (Number.isFinite(detail.lon) && Number.isFinite(detail.lat)) all.push([detail.lon, detail.lat]);
      if (!this.ensureOrigin(all)) return;
      const geom = geomPath(detail.geometry);
      if (geom.d) {
        lines.append(svg("path", {
          d: geom.d, class: "evidence-geometry" + (geom.area ? " area" : ""),
          "vector-effect": "non-scaling-stroke", "data-alert-id": detail.alert_id,
        }));
      }
      if (track.length >= 2) {
        lines.append(svg("path", {
          d: ringPath(track, false), class: "evidence-track",
          "vector-effect": "non-scaling-stroke", "data-points": track.length,
        }));
      }
      const mark = (node, lon, lat, r) => {
        const [wx, wy] = proj.fwd(lon, lat);
        const m = { node, wx, wy, r };
        points.append(node);
        this.evidenceMarks.push(m);
        this.place(m);
      };
      if (track.length <= 300) {
        for (const [lon, lat] of track) mark(svg("circle", { r: 2.5, class: "evidence-vertex" }), lon, lat, 2.5);
      }
      if (track.length >= 2) {
        const first = track[0];
        const last = track[track.length - 1];
        mark(svg("circle", { r: 5, class: "evidence-end", "data-end": "first" }), first[0], first[1], 5);
        mark(svg("circle", { r: 5, class: "evidence-end", "data-end": "last" }), last[0], last[1], 5);
      }
      if (Number.isFinite(detail.lon) && Number.isFinite(detail.lat)) {
        // The alert's own point (the stop, the first off-corridor point...): a square.
        const node = svg("rect", { width: 14, height: 14, class: "evidence-point", "data-alert-id": detail.alert_id });
        mark(node, detail.lon, detail.lat, 7);
      }
      this.apply();
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
      el("span", { class: `sev sev-${a.severity || "low"}`, text: a.severity || "?" }),
      el("span", { class: "kind", text: kindLabel(a.kind) }),
      el("span", { class: "status-chip", "data-status": a.status, text: statusLabel(a.status) }),
      el("span", { class: "vehicle", text: a.vehicle_id || "—" }),
      el("span", { class: "when", text: fmtTime(a.start) }),
      el("span", { class: "summary-line", text: a.summary || "" }));
      btn.addEventListener("click", () => selectAlert(a.alert_id));
      ul.append(el("li", {}, btn));
    }
    const total = state.total;
    $("alert-count").textContent = state.token ? `(${total})` : "";
    const empty = $("list-empty");
    if (!state.token) {
      empty.textContent = "Enter an access token to load the alerts.";
      empty.hidden = false;
    } else if (!state.list.length) {
      empty.textContent = "No alert matches these filters.";
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
    const from = total ? state.offset + 1 : 0;
    const to = state.offset + state.list.length;
    $("page-info").textContent = total ? `${from}–${to} of ${total}` : "";
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
    $("map-note").textContent = state.total > shown ? `map shows ${shown} of ${state.total} alerts` : "";
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
      if (!quiet) announce(`New alert: ${kindLabel(a.kind)}, ${a.vehicle_id || "no vehicle"}`);
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
      showMessage(`Could not load alert ${alertId}: ${err.message}`);
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
      $("detail-heading").textContent = "Alert detail";
      return;
    }
    $("detail-heading").textContent = `${kindLabel(d.kind)}`;
    $("detail-summary").textContent = d.summary || "";
    const fields = $("detail-fields");
    fields.replaceChildren();
    const start = parseTime(d.start);
    const end = parseTime(d.end);
    const rows = [
      ["Vehicle", d.vehicle_id || "—"],
      ["Severity", d.severity || "—"],
      ["From", fmtTime(d.start)],
      ["To", fmtTime(d.end) + (start && end ? ` (${fmtDuration((end - start) / 1000)})` : "")],
      ["Site", d.site_id || "—"],
      ["Manifest", d.manifest_id || "—"],
      ["Trip", d.trip_id || "—"],
      ["Location", Number.isFinite(d.lon) && Number.isFinite(d.lat)
        ? `${d.lon.toFixed(5)}, ${d.lat.toFixed(5)}` : "—"],
      ["Alert id", d.alert_id],
    ];
    if (timeZoneName) rows.push(["Times in", timeZoneName]);
    for (const [k, v] of rows) fields.append(el("dt", { text: k }), el("dd", { text: v }));

    const ev = $("detail-evidence");
    ev.replaceChildren();
    const evidence = d.evidence;
    if (evidence && typeof evidence === "object" && !Array.isArray(evidence)) {
      const keys = Object.keys(evidence);
      if (!keys.length) ev.append(el("dt", { text: "—" }), el("dd", { text: "no evidence recorded" }));
      for (const k of keys) {
        let text;
        if (k === "track") {
          const t = evidenceTrack(evidence);
          const raw = Array.isArray(evidence.track) ? evidence.track : [];
          const t0 = raw.length && Array.isArray(raw[0]) ? raw[0][2] : null;
          const t1 = raw.length && Array.isArray(raw[raw.length - 1]) ? raw[raw.length - 1][2] : null;
          text = `${t.length} points` + (t0 && t1 ? `, ${fmtTime(t0)} – ${fmtTime(t1)}` : "")
            + " (dashed line on the map)";
        } else {
          text = fmtValue(k, evidence[k]);
        }
        ev.append(el("dt", { text: humanKey(k) }), el("dd", { text, "data-key": k }));
      }
    } else if (evidence !== undefined && evidence !== null) {
      ev.append(el("dt", { text: "Evidence" }), el("dd", { text: String(evidence) }));
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
        ` by ${h.by || "?"}, ${fmtTime(h.at)}`);
      if (h.note) li.append(el("span", { class: "note", text: ` — ${h.note}` }));
      hist.append(li);
    }
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
      announce(`Status set to ${statusLabel(updated.status)}`);
    } catch (err) {
      if (err.status === 409) {
        showMessage("Someone changed this alert meanwhile; it was reloaded. Check it and try again.", "info");
        await loadDetail(d.alert_id).catch(() => {});
      } else if (err.status === 403) {
        showMessage("Your token may not change alert status (a dispatcher or admin token is needed).");
      } else {
        showMessage(`Status change failed: ${err.message}`);
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
  const PROGRESS_LABELS = { t_s: "Flight time", mode: "Flight mode", armed: "Armed", photos: "Photos taken" };
  const POSITION_KEYS = ["position", "lat_deg", "lon_deg", "lat", "lon", "alt_rel_m", "alt_m"];
  const ESTIMATE_LABELS = {
    distance_total_m: "Planned distance",
    duration_s: "Planned duration",
    battery_used_pct: "Planned battery use",
    planned_start: "Planned start",
  };

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
    $("mission-id").textContent = `Mission ${m.mission_id}`;
    const chip = $("mission-status");
    chip.textContent = m.status || "?";
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
    const rows = [["Dock", m.dock_site_id || "—"]];
    if (pr.phase !== undefined && pr.phase !== m.status && !terminal) rows.push(["Phase", String(pr.phase)]);
    if (Number.isFinite(reached)) {
      let text = String(reached);
      if (Number.isFinite(lastSeq)) text += ` (last: item ${lastSeq}${Number.isFinite(total) ? ` of ${total}` : ""})`;
      rows.push(["Items reached", text]);
    }
    if (Number.isFinite(current) && !terminal) {
      rows.push(["Current item", String(current) + (Number.isFinite(total) ? ` of ${total}` : "")]);
    }
    if (pr.battery !== undefined && Number.isFinite(Number(pr.battery))) {
      rows.push(["Battery", fmtNumber(Number(pr.battery), 0) + " %"]);
    }
    if (pr.position && m.status !== "completed") {
      const alt = Number(pr.raw.alt_rel_m ?? (pr.raw.position && pr.raw.position.alt_rel_m));
      rows.push(["Drone at", `${pr.position[0].toFixed(5)}, ${pr.position[1].toFixed(5)}`
        + (Number.isFinite(alt) ? `, ${fmtNumber(alt, 0)} m above the dock` : "")]);
    }
    const known = new Set([...Object.values(PROGRESS_KEYS).flat(), ...POSITION_KEYS]);
    for (const [k, v] of Object.entries(pr.raw)) {
      if (known.has(k) || v === null || v === undefined || typeof v === "object") continue;
      if (terminal && LIVE_ONLY.has(k)) continue; // mode / armed of a flight that is over
      rows.push([PROGRESS_LABELS[k] || humanKey(k), fmtValue(k, v)]);
    }
    const estimate = pr.raw.estimate;
    if (estimate && typeof estimate === "object") {
      for (const [k, label] of Object.entries(ESTIMATE_LABELS)) {
        if (estimate[k] !== undefined && estimate[k] !== null) rows.push([label, fmtValue(k, estimate[k])]);
      }
    }
    for (const [k, v] of rows) {
      fields.append(el("dt", { text: k }),
        el("dd", { text: v, "data-field": k.toLowerCase().replace(/[^a-z0-9]+/g, "-") }));
    }
    const reason = $("mission-reason");
    reason.hidden = !m.reason;
    reason.textContent = m.reason || "";
    $("mission-abort").hidden = terminal;
    $("send-drone").disabled = !terminal;
    // A completed flight has landed at its dock; otherwise show where it was last seen.
    map.drawDrone(m.status === "completed" ? null : pr.position);
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
    if (state.detail && merged.alert_id === state.detail.alert_id) {
      if (!state.shownMissionId || state.shownMissionId === merged.mission_id
        || MISSION_TERMINAL.has((state.missions.get(state.shownMissionId) || {}).status)) {
        state.shownMissionId = merged.mission_id;
      }
      renderMission();
      if (MISSION_TERMINAL.has(merged.status) && !MISSION_TERMINAL.has(prev.status)) {
        announce(`Drone mission ${merged.status}`);
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
      announce(`Drone mission ${m.mission_id} ${m.status}`);
      watchMission(m.mission_id);
    } catch (err) {
      let text = err.message;
      if (err.status === 422) {
        // The service names the refusal (out_of_range, battery, no_fly, daylight...) and says why.
        const items = err.body && Array.isArray(err.body.detail) ? err.body.detail : [];
        const why = items.map((i) => (i && i.msg ? String(i.msg) : "")).filter(Boolean).join("; ");
        const code = items.map((i) => (i && typeof i.type === "string" ? i.type : "")).find(Boolean);
        text = "The drone cannot go" + (code ? ` (${code.replace(/_/g, " ")})` : "") + ": "
          + (why || err.message);
      }
      else if (err.status === 403) text = "Your token may not dispatch drones (a dispatcher or admin token is needed).";
      else if (err.status === 409) text = "A drone is already on its way: " + err.message;
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
      showMessage(`Abort failed: ${err.message}`);
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
      showMessage(`No flight plan: ${err.message}`);
    }
  }

  // ----------------------------------------------------------------- stream
  function setConn(stateName, text) {
    const c = $("conn-status");
    c.dataset.state = stateName;
    c.textContent = text;
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
    setConn("connecting", "Connecting…");
    const es = new EventSource("api/stream" + query({ access_token: state.token }));
    state.stream = es;
    es.addEventListener("open", () => {
      markOpen();
      setConn("live", "Live");
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
        setConn("connecting", "Reconnecting…");
        return;
      }
      // Closed for good by the browser (HTTP error, wrong type): check the token, retry later.
      setConn("offline", "Offline");
      es.close();
      state.stream = null;
      const wait = state.streamRetryMs;
      state.streamRetryMs = Math.min(state.streamRetryMs * 2, 30000);
      state.streamTimer = window.setTimeout(async () => {
        try {
          await api("api/alerts" + query({ limit: 1 }));
        } catch (err) {
          if (err.status === 401) {
            signOut("The token was refused (401); enter a valid token.");
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
    const dock = $("dock-select");
    dock.replaceChildren(el("option", { value: "", text: "Nearest suitable dock (automatic)" }));
    for (const f of (state.sites && state.sites.features) || []) {
      const p = f.properties || {};
      if (p.kind === "nest" && p.site_id) {
        dock.append(el("option", { value: p.site_id, text: p.name ? `${p.name} (${p.site_id})` : p.site_id }));
      }
    }
    map.drawRegistry();
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
      if (err.status === 401) showMessage("The token was refused (401). Check it and try again.");
      else if (err.status === 403) showMessage("This token may not read alerts (403): use an analyst, dispatcher or admin token.");
      else showMessage(`Cannot connect: ${err.message}`);
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
    await loadRegistry();
    try {
      await loadAlerts();
    } catch (err) {
      showMessage(`Could not load alerts: ${err.message}`);
    }
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
    setConn("offline", "Offline");
    showMessage(message || "");
    $("token-input").focus();
  }

  // ------------------------------------------------------------------ start
  function init() {
    const kindSelect = $("filter-kind");
    for (const [k, label] of Object.entries(KIND_LABELS)) kindSelect.append(el("option", { value: k, text: label }));
    const statusSelect = $("filter-status");
    for (const [k, label] of Object.entries(STATUS_LABELS)) statusSelect.append(el("option", { value: k, text: label }));

    map.init();
    map.updateScaleBar();

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
      if (state.token) loadAlerts().catch((err) => showMessage(`Could not load alerts: ${err.message}`));
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
