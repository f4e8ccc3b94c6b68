// The gateway's playground: plain browser JavaScript, no build step, nothing fetched from outside the gateway.
// It uses the public HTTP API: GET /v1/experts, and the task endpoints with `Accept: text/event-stream`
// (server-sent events: `partial` as each expert finishes, then `result`, or `error`).
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
  const PALETTE = [
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
  ];

  const files = { image: undefined, after: undefined };
  let picture; // the ImageBitmap of the image shown, when the browser can decode it
  let running; // the AbortController of the request under way

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
    for (const option of select.options) option.disabled = !served.has(option.value);
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
  }

  async function setFile(field, file) {
    files[field] = file;
    const zone = $(field === 'image' ? 'drop-image' : 'drop-after');
    zone.querySelector('.drop-hint').textContent = `${file.name} (${Math.round(file.size / 1024)} KiB)`;
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
    const canvas = $('canvas');
    const context = canvas.getContext('2d');
    if (picture) {
      canvas.width = picture.width;
      canvas.height = picture.height;
      context.drawImage(picture, 0, 0);
    } else {
      context.clearRect(0, 0, canvas.width, canvas.height);
    }
    $('legend').textContent = '';
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
    const legend = $('legend');
    for (const entry of mask.classes) {
      if (entry.index === 0) continue;
      const [r, g, b] = PALETTE[(entry.index - 1) % PALETTE.length];
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = `rgb(${r}, ${g}, ${b})`;
      item.append(swatch, `${entry.name} ${(100 * entry.areaFraction).toFixed(1)}%`);
      legend.append(item);
    }
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

  async function run(event) {
    event.preventDefault();
    const task = $('task').value;
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
    running?.abort();
    running = new AbortController();
    $('experts').tBodies[0].replaceChildren();
    $('answer').textContent = '';
    $('timings').textContent = '';
    $('error').textContent = '';
    $('status').textContent = `running ${task}…`;
    $('cancel').disabled = false;
    setState('running');
    draw();
    try {
      const response = await fetch(ENDPOINTS[task], { method: 'POST', body: form, headers: { ...authHeaders(), Accept: 'text/event-stream' }, signal: running.signal });
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
      if (error.name === 'AbortError') {
        $('status').textContent = 'cancelled';
        setState('cancelled');
      } else showError(error.message);
    } finally {
      $('cancel').disabled = true;
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
  $('task').addEventListener('change', onTaskChange);
  $('request-form').addEventListener('submit', run);
  $('cancel').addEventListener('click', () => running?.abort());
  $('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, $('api-key').value.trim());
    $('api-key').value = '';
    loadExperts();
  });
  setState('loading');
  loadExperts();
})();
