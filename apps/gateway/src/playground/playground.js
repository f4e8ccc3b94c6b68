// The gateway's playground: plain browser JavaScript, no build step, nothing fetched from outside the gateway.
// It uses the public HTTP API: GET /v1/experts, and the task endpoints with `Accept: text/event-stream`
// (server-sent events: `partial` as each expert finishes, then `result`, or `error`); for a whole scene,
// POST /v1/scenes, GET /v1/scenes/{id} every second until it ends (DELETE to cancel), then its preview.png
// and geojson.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  /** sessionStorage only: the key lives as long as this tab, never in localStorage or a cookie. */
  const KEY_STORAGE = 'rsmoe.apiKey';
  const ENDPOINTS = {
    caption: '/v1/captions',
    vqa: '/v1/vqa',
    classification: '/v1/classify',
    grounding: '/v1/grounding',
    referring: '/v1/referring',
    segmentation: '/v1/segmentation',
    change: '/v1/changes',
  };
  /** The text field of a task: its form field, its label and an example. */
  const TEXT_FIELDS = {
    vqa: ['question', 'Question', 'how many airplanes are there ?'],
    grounding: ['query', 'Phrase to find', 'the runway'],
    referring: ['box', 'Box x1,y1,x2,y2 (pixels)', '10,10,120,90'],
    segmentation: ['classes', 'Classes (comma-separated) or a phrase', 'building, water'],
  };
  /** The tasks a whole scene takes (POST /v1/scenes `tasks`); each is offered when the pack serves it. */
  const SCENE_TASKS = ['caption', 'classification', 'grounding', 'segmentation'];
  /** How often a running scene's progress is read (GET /v1/scenes/{id} answers `Retry-After: 1`), ms. */
  const SCENE_POLL_MS = 1000;
  const SCENE_ENDS = ['done', 'failed', 'cancelled'];
  // The scene preview's colours (libs/scenes/src/scene-preview.ts), so that a scene's legend matches its preview:
  // mask class i (from 1) takes PALETTE[(i − 1) % n], box or grounding phrase j PALETTE[j % n].
  const PALETTE = [
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
    [250, 190, 212],
    [0, 128, 128],
    [220, 190, 255],
    [170, 110, 40],
    [255, 250, 200],
  ];

  const files = { image: undefined, after: undefined, scene: undefined };
  let picture; // the ImageBitmap of the image shown, when the browser can decode it
  let running; // the AbortController of the request under way
  let sceneId; // the scene under way, from its 202 until it ends: what Cancel sends DELETE for
  let scenePreview; // the ImageBitmap of the last scene's preview (its overlays drawn by the mesh)
  let geojsonUrl; // the blob URL behind the last scene's GeoJSON link

  const setState = (state) => (document.body.dataset.state = state);
  const showError = (message) => {
    $('error').textContent = message;
    setState('error');
  };
  const authHeaders = () => {
    const key = sessionStorage.getItem(KEY_STORAGE);
    return key ? { Authorization: `Bearer ${key}` } : {};
  };
  const ms = (value) => (typeof value === 'number' ? `${Math.round(value)} ms` : '');
  const seconds = (value) => (value < 60 ? `${Math.ceil(value)} s` : `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`);
  const percent = (fraction) => `${(100 * fraction).toFixed(1)}%`;
  const sceneTaskBoxes = () => [...document.querySelectorAll('input[name="scene-task"]')];

  function askForKey(message) {
    $('auth').hidden = false;
    $('auth-message').textContent = message;
    $('api-key').focus();
  }

  /** The pack and the tasks its experts serve (a task no expert serves is disabled). */
  async function loadExperts() {
    let response;
    try {
      response = await fetch('/v1/experts', { headers: authHeaders() });
    } catch (error) {
      showError(`the gateway does not answer: ${error.message}`);
      return;
    }
    if (response.status === 401 || response.status === 403) {
      sessionStorage.removeItem(KEY_STORAGE);
      askForKey('This gateway needs an API key (AUTH_MODE=required): make one with `rsmoe keys create`.');
      return;
    }
    if (!response.ok) {
      showError(await errorText(response));
      return;
    }
    $('auth').hidden = true;
    const list = await response.json();
    $('pack').textContent = `pack ${list.packName}@${list.packVersion} · experts: ${list.experts.map((expert) => expert.id).join(', ')}`;
    const served = new Set(
      list.experts.flatMap((expert) => (expert.tasks.length > 0 ? expert.tasks : ['caption', 'vqa'])).map((task) => (task.startsWith('change_') ? 'change' : task)),
    );
    const select = $('task');
    for (const option of select.options) option.disabled = option.value === 'scene' ? !SCENE_TASKS.some((task) => served.has(task)) : !served.has(option.value);
    for (const box of sceneTaskBoxes()) {
      box.disabled = !served.has(box.value);
      if (box.disabled) box.checked = false;
    }
    if (select.selectedOptions[0]?.disabled) select.value = [...select.options].find((option) => !option.disabled)?.value ?? 'caption';
    onTaskChange();
    setState('ready');
  }

  async function errorText(response) {
    const body = await response.json().catch(() => undefined);
    return body?.error ? `${response.status} ${body.error.code}: ${body.error.message}` : `HTTP ${response.status}`;
  }

  function onTaskChange() {
    const task = $('task').value;
    const field = TEXT_FIELDS[task];
    $('text-label').hidden = !field;
    if (field) {
      $('text-name').textContent = field[1];
      $('text').placeholder = field[2];
    }
    $('drop-after').hidden = task !== 'change';
    $('drop-image').querySelector('.drop-title').textContent = task === 'change' ? 'Before' : 'Image';
    // A whole scene has its own file, options and result pane; the canvas shows the mode's own picture.
    const scene = task === 'scene';
    const wasScene = !$('drop-scene').hidden;
    for (const id of ['drop-scene', 'scene-options', 'scene-result']) $(id).hidden = !scene;
    for (const id of ['drop-image', 'single-result']) $(id).hidden = scene;
    if (scene !== wasScene) {
      $('answer').textContent = '';
      if (scene) drawScene();
      else draw();
    }
  }

  async function setFile(field, file) {
    files[field] = file;
    $(`drop-${field}`).querySelector('.drop-hint').textContent = `${file.name} (${Math.round(file.size / 1024)} KiB)`;
    if (field !== 'image') return;
    picture = undefined;
    try {
      picture = await createImageBitmap(file);
    } catch {
      $('status').textContent = 'This browser cannot show the image (e.g. TIFF); the mesh still reads it.';
    }
    draw();
  }

  /** The image, then the answer's mask and boxes over it. */
  function draw(answer) {
    const { canvas, context } = paint(picture);
    if (!answer) return Promise.resolve();
    return drawMask(context, answer.mask).then(() => {
      const boxes = [...(answer.boxes ?? []), ...(answer.box ? [answer.box] : [])];
      context.lineWidth = Math.max(2, Math.round(canvas.width / 200));
      context.font = `${Math.max(12, Math.round(canvas.width / 40))}px sans-serif`;
      boxes.forEach((box, index) => {
        const [r, g, b] = PALETTE[index % PALETTE.length];
        const [x1, y1, x2, y2] = box.boxPx;
        context.strokeStyle = `rgb(${r}, ${g}, ${b})`;
        context.fillStyle = context.strokeStyle;
        context.strokeRect(x1, y1, x2 - x1, y2 - y1);
        if (box.phrase) context.fillText(box.phrase, x1 + 3, Math.max(14, y1 - 4));
      });
    });
  }

  /** A mask answer's PNG (pixel = class index) coloured over the image: others (0) and ignore (255) stay clear. */
  async function drawMask(context, mask) {
    if (!mask) return;
    const bytes = Uint8Array.from(atob(mask.png), (char) => char.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const layer = document.createElement('canvas');
    layer.width = mask.width;
    layer.height = mask.height;
    const layerContext = layer.getContext('2d');
    layerContext.drawImage(bitmap, 0, 0);
    const pixels = layerContext.getImageData(0, 0, mask.width, mask.height);
    for (let offset = 0; offset < pixels.data.length; offset += 4) {
      const index = pixels.data[offset];
      const [r, g, b] = index === 0 || index === 255 ? [0, 0, 0] : PALETTE[(index - 1) % PALETTE.length];
      pixels.data.set([r, g, b, index === 0 || index === 255 ? 0 : 120], offset);
    }
    layerContext.putImageData(pixels, 0, 0);
    context.drawImage(layer, 0, 0, context.canvas.width, context.canvas.height);
    for (const entry of mask.classes) {
      if (entry.index !== 0) addLegend(PALETTE[(entry.index - 1) % PALETTE.length], `${entry.name} ${percent(entry.areaFraction)}`);
    }
  }

  /** One colour swatch and its text under the canvas. */
  function addLegend([r, g, b], text) {
    const item = document.createElement('span');
    const swatch = document.createElement('i');
    swatch.style.background = `rgb(${r}, ${g}, ${b})`;
    item.append(swatch, text);
    $('legend').append(item);
  }

  /** The last scene's preview, or a blank canvas before one is done. */
  function drawScene() {
    paint(scenePreview);
  }

  /** The canvas showing `bitmap` at its own size (blank without one), the legend cleared. */
  function paint(bitmap) {
    const canvas = $('canvas');
    const context = canvas.getContext('2d');
    if (bitmap) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      context.drawImage(bitmap, 0, 0);
    } else {
      context.clearRect(0, 0, canvas.width, canvas.height);
    }
    $('legend').textContent = '';
    return { canvas, context };
  }

  /** One row per expert, added when its partial arrives (`data-streamed`) and completed by the result. */
  function showExpert(output, streamed = false) {
    const body = $('experts').tBodies[0];
    let row = body.querySelector(`tr[data-expert="${CSS.escape(output.expertId)}"]`);
    if (!row) {
      row = body.insertRow();
      row.dataset.expert = output.expertId;
      for (let cell = 0; cell < 6; cell += 1) row.insertCell();
      for (const cell of [3, 4, 5]) row.cells[cell].className = 'num';
    }
    row.className = output.status;
    if (streamed) row.dataset.streamed = 'true';
    const timings = output.timings ?? {};
    const values = [output.expertId, output.status, output.text || output.error || '', ms(timings.queueMs), ms(timings.timeToFirstTokenMs), ms(timings.computeMs)];
    values.forEach((value, index) => (row.cells[index].textContent = value));
  }

  function answerText(answer) {
    switch (answer.task) {
      case 'vqa':
        return `${answer.question} → ${answer.answer}`;
      case 'classification':
        return `${answer.label}${answer.labelScores ? ` (${answer.labelScores.slice(0, 3).map((score) => `${score.label} ${(100 * score.value).toFixed(0)}%`).join(', ')})` : ''}`;
      case 'grounding':
        return `${(answer.boxes ?? []).length} box(es) for “${answer.query ?? ''}”`;
      case 'segmentation':
        return (answer.mask?.classes ?? []).map((entry) => `${entry.name} ${(100 * entry.areaFraction).toFixed(1)}%`).join(', ');
      case 'change':
        return [answer.caption, answer.changedFraction !== undefined ? `changed: ${(100 * answer.changedFraction).toFixed(1)}% of the image` : undefined].filter(Boolean).join(' · ');
      default:
        return answer.caption ?? '';
    }
  }

  async function showResult(answer) {
    for (const expert of answer.experts) showExpert(expert);
    $('answer').textContent = answerText(answer);
    const timings = answer.timings ?? {};
    $('timings').textContent = `request ${answer.requestId} · total ${ms(timings.totalMs)} · queue ${ms(timings.queueMs)} · compute ${ms(timings.computeMs)}${answer.degraded ? ` · degraded (missing: ${answer.missingExperts.join(', ')})` : ''} · pack ${answer.packName}@${answer.packVersion}`;
    await draw(answer);
    $('status').textContent = 'done';
    setState('done');
  }

  /** Reads server-sent events from a fetch body (EventSource cannot POST). */
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length > 0) await onEvent(name, JSON.parse(data.join('\n')));
      }
    }
  }

  /** Clears the last answer and starts a run, which Cancel or the next run aborts; returns its AbortController. */
  function begin(message) {
    running?.abort();
    running = new AbortController();
    sceneId = undefined;
    $('experts').tBodies[0].replaceChildren();
    $('answer').textContent = '';
    $('timings').textContent = '';
    $('scene-summary').replaceChildren();
    $('geojson').hidden = true;
    if (geojsonUrl) URL.revokeObjectURL(geojsonUrl);
    geojsonUrl = undefined;
    $('error').textContent = '';
    $('status').textContent = message;
    $('cancel').disabled = false;
    setState('running');
    return running;
  }

  async function run(event) {
    event.preventDefault();
    const task = $('task').value;
    if (task === 'scene') return runScene();
    if (!files.image) return showError(task === 'change' ? 'choose the before image first' : 'choose or drop an image first');
    if (task === 'change' && !files.after) return showError('choose the after image too');
    const form = new FormData();
    if (task === 'change') {
      form.append('before', files.image);
      form.append('after', files.after);
    } else form.append('image', files.image);
    const field = TEXT_FIELDS[task];
    const text = $('text').value.trim();
    if (field && text !== '') form.append(field[0], text);
    const controller = begin(`running ${task}…`);
    draw();
    try {
      const response = await fetch(ENDPOINTS[task], { method: 'POST', body: form, headers: { ...authHeaders(), Accept: 'text/event-stream' }, signal: controller.signal });
      if (response.status === 401) {
        sessionStorage.removeItem(KEY_STORAGE);
        askForKey('The API key was refused: enter a valid one.');
        return showError(await errorText(response));
      }
      if (!/^text\/event-stream/.test(response.headers.get('content-type') ?? '')) return showError(await errorText(response));
      await readEvents(response.body, async (name, data) => {
        if (name === 'partial') showExpert(data.partial, true);
        else if (name === 'result') await showResult(data);
        else if (name === 'error') showError(`${data.error.code}: ${data.error.message}`);
      });
    } catch (error) {
      // A run the next one aborted says nothing: the page is the new run's.
      if (running !== controller) return;
      if (error.name === 'AbortError') {
        $('status').textContent = 'cancelled';
        setState('cancelled');
      } else showError(error.message);
    } finally {
      if (running === controller) $('cancel').disabled = true;
    }
  }

  /** Waits `delay` ms, or rejects as soon as `signal` aborts. */
  function sleep(delay, signal) {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const timer = setTimeout(resolve, delay);
      signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
    });
  }

  /** The progress line of a scene: its status, tiles done of total, skipped, failed, rate and ETA while it runs. */
  function sceneProgressText(answer) {
    const progress = answer.progress;
    const parts = [`scene ${answer.sceneId.slice(0, 8)} ${answer.status}`, `${progress.tilesDone}/${progress.tilesTotal} tiles`, `${progress.tilesSkipped} skipped`];
    if (progress.tilesFailed > 0) parts.push(`${progress.tilesFailed} failed`);
    if (!SCENE_ENDS.includes(answer.status)) {
      if (typeof progress.tilesPerSecond === 'number') parts.push(`${progress.tilesPerSecond.toFixed(1)} tiles/s`);
      if (typeof progress.etaSeconds === 'number') parts.push(`ETA ${seconds(progress.etaSeconds)}`);
    }
    return parts.join(' · ');
  }

  /**
   * A whole scene: the GeoTIFF and its fields to POST /v1/scenes (202), its progress read every SCENE_POLL_MS
   * until it ends, then its result shown. Cancel aborts the upload, or sends DELETE once the scene has an id.
   */
  async function runScene() {
    if (!files.scene) return showError('choose or drop a GeoTIFF scene first');
    const tasks = sceneTaskBoxes().filter((box) => box.checked && !box.disabled).map((box) => box.value);
    if (tasks.length === 0) return showError('choose at least one scene task');
    const form = new FormData();
    form.append('tasks', tasks.join(','));
    const fields = {
      phrases: tasks.includes('grounding') ? $('scene-phrases').value : '',
      classes: tasks.includes('segmentation') ? $('scene-classes').value : '',
      tileSize: $('scene-tile-size').value,
      overlap: $('scene-overlap').value,
      bands: $('scene-bands').value,
    };
    for (const [name, value] of Object.entries(fields)) if (value.trim() !== '') form.append(name, value.trim());
    form.append('scene', files.scene);
    const controller = begin(`uploading ${files.scene.name}…`);
    const { signal } = controller;
    scenePreview = undefined;
    drawScene();
    try {
      const response = await fetch('/v1/scenes', { method: 'POST', body: form, headers: authHeaders(), signal });
      if (response.status === 401) {
        sessionStorage.removeItem(KEY_STORAGE);
        askForKey('The API key was refused: enter a valid one.');
        return showError(await errorText(response));
      }
      if (response.status !== 202) return showError(await errorText(response));
      let answer = await response.json();
      signal.throwIfAborted();
      sceneId = answer.sceneId;
      while (!SCENE_ENDS.includes(answer.status)) {
        $('status').textContent = sceneProgressText(answer);
        await sleep(SCENE_POLL_MS, signal);
        const poll = await fetch(`/v1/scenes/${answer.sceneId}`, { headers: authHeaders(), signal });
        if (!poll.ok) return showError(await errorText(poll));
        answer = await poll.json();
        signal.throwIfAborted();
      }
      // Ended: from here Cancel only stops the downloads (a DELETE now would erase the finished scene).
      sceneId = undefined;
      $('status').textContent = sceneProgressText(answer);
      if (answer.status === 'done') await showSceneResult(answer, signal);
      else if (answer.status === 'failed') showError(`the scene failed${answer.error ? `: ${answer.error.code}: ${answer.error.message}` : ''}`);
      else setState('cancelled');
    } catch (error) {
      if (running !== controller) return;
      // With a scene id, cancelScene() reports the DELETE; before one, aborting the upload is the cancel.
      if (error.name === 'AbortError') {
        if (sceneId === undefined) {
          $('status').textContent = 'cancelled';
          setState('cancelled');
        }
      } else showError(error.message);
    } finally {
      if (running === controller) {
        $('cancel').disabled = true;
        sceneId = undefined;
      }
    }
  }

  /** A done scene: its preview on the canvas, its caption, a summary, a legend and the GeoJSON to download. */
  async function showSceneResult(answer, signal) {
    const result = answer.result ?? {};
    // With the key in a header, so not an <img src>: fetched, then decoded here.
    const preview = await fetch(answer.links.preview, { headers: authHeaders(), signal });
    if (!preview.ok) return showError(await errorText(preview));
    scenePreview = await createImageBitmap(await preview.blob());
    drawScene();
    $('answer').textContent = result.caption?.text ?? '';
    const lines = [`${answer.width} × ${answer.height} px in ${answer.tiling.columns} × ${answer.tiling.rows} tiles of ${answer.tiling.tileSize} px (overlap ${answer.tiling.overlap})`];
    if (result.tiles) lines.push(`tiles: ${result.tiles.done} done, ${result.tiles.skippedNodata} nodata, ${result.tiles.skippedUniform} uniform, ${result.tiles.failed} failed`);
    if (result.classification) {
      const shares = result.classification.shares.slice(0, 3).map((entry) => `${entry.label} ${percent(entry.share)}`);
      lines.push(`classification: a ${result.classification.rows} × ${result.classification.columns} grid of tile labels${shares.length > 0 ? ` (${shares.join(', ')})` : ''}`);
    }
    if (result.grounding) {
      lines.push(`grounding: ${result.grounding.boxes.length} box(es) for ${result.grounding.phrases.map((phrase) => `“${phrase}”`).join(', ')}`);
      result.grounding.phrases.forEach((phrase, index) => addLegend(PALETTE[index % PALETTE.length], `${phrase} ${result.grounding.boxes.filter((box) => box.phrase === phrase).length}`));
    }
    if (result.segmentation) {
      const classes = result.segmentation.classes.filter((entry) => entry.index !== 0);
      lines.push(`segmentation: ${classes.map((entry) => `${entry.name} ${percent(entry.areaFraction)}`).join(', ')}`);
      for (const entry of classes) addLegend(PALETTE[(entry.index - 1) % PALETTE.length], `${entry.name} ${percent(entry.areaFraction)}`);
    }
    if (result.georeference) lines.push(result.georeference.status === 'georeferenced' ? `georeferenced (EPSG:${result.georeference.epsg}); the GeoJSON is in WGS 84 lon/lat` : 'not georeferenced: the GeoJSON is in scene pixels');
    if (result.failures?.count > 0) {
      const first = result.failures.listed[0];
      lines.push(`${result.failures.count} tile task(s) without an answer${first ? ` (first: tile ${first.tile} ${first.task}: ${first.code})` : ''}`);
    }
    $('scene-summary').replaceChildren(...lines.map((line) => Object.assign(document.createElement('li'), { textContent: line })));
    const geojson = await fetch(answer.links.geojson, { headers: authHeaders(), signal });
    if (!geojson.ok) return showError(await errorText(geojson));
    geojsonUrl = URL.createObjectURL(await geojson.blob());
    const link = $('geojson');
    link.href = geojsonUrl;
    link.download = `scene-${answer.sceneId}.geojson`;
    link.hidden = false;
    setState('done');
  }

  /** Cancel: a scene with an id is cancelled at the mesh (DELETE); anything else is aborted here. */
  async function cancel() {
    const id = sceneId;
    const cancelled = running;
    running?.abort();
    if (id === undefined) return;
    $('cancel').disabled = true;
    $('status').textContent = `cancelling scene ${id.slice(0, 8)}…`;
    try {
      const response = await fetch(`/v1/scenes/${id}`, { method: 'DELETE', headers: authHeaders() });
      // A run started meanwhile owns the page.
      if (running !== cancelled) return;
      if (response.status === 202) $('status').textContent = `scene ${id.slice(0, 8)} cancelled`;
      else if (response.status === 204) $('status').textContent = `scene ${id.slice(0, 8)} had just finished: erased`;
      else return showError(await errorText(response));
      setState('cancelled');
    } catch (error) {
      showError(error.message);
    }
  }

  function wireDrop(zone, field) {
    const input = zone.querySelector('input');
    input.addEventListener('change', () => input.files[0] && setFile(field, input.files[0]));
    zone.addEventListener('dragover', (event) => {
      event.preventDefault();
      zone.classList.add('over');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      zone.classList.remove('over');
      const file = event.dataTransfer?.files[0];
      if (file) setFile(field, file);
    });
  }

  wireDrop($('drop-image'), 'image');
  wireDrop($('drop-after'), 'after');
  wireDrop($('drop-scene'), 'scene');
  $('task').addEventListener('change', onTaskChange);
  $('request-form').addEventListener('submit', run);
  $('cancel').addEventListener('click', cancel);
  $('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, $('api-key').value.trim());
    $('api-key').value = '';
    loadExperts();
  });
  setState('loading');
  loadExperts();
})();
