# Union QA bot: a CPU-only image that never downloads anything at run time.
#
#   docker build -t union-qa-bot .
#   docker run -d --name union-qa-bot -p 127.0.0.1:8080:8080 --env-file /srv/union-bot/bot.env \
#     -v /srv/union-bot/knowledge:/data/knowledge:ro -v /srv/union-bot/index:/data/index \
#     -v /srv/union-bot/querylog:/data/querylog union-qa-bot
#
# docs/deploy.md has the whole procedure (volumes, secrets, nginx, WeChat settings).
# Build arguments:
#   PYTHON_IMAGE     base image of both stages (e.g. the same image from a registry mirror)
#   TORCH_INDEX_URL  pip index serving CPU-only torch wheels (e.g. a mirror of it)

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: a virtualenv with torch, the bot, and the converted default model ----
FROM ${PYTHON_IMAGE} AS builder

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

# torch first, pinned and CPU-only: the project pins torch==2.13.0 too, and from PyPI that
# version would come with several GB of CUDA libraries. (On the development machine the same
# CPU build comes from a local wheel via pip's configuration, i.e. plain
# `pip install torch==2.13.0` as in scripts/install.sh; an image build uses the index.)
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0

# Every other dependency has wheels for Linux x86_64/arm64, so no compiler is needed here either.
WORKDIR /src
COPY pyproject.toml ./
COPY bot ./bot
RUN pip install . && python -c "import bot.app"

# The container's settings: the shipped defaults except for the paths and the listen address.
# Mount your own file over /etc/bot/config.toml to change more (keep these paths).
RUN mkdir -p /etc/bot && printf '%s\n' \
      '# Settings of the union QA bot in its container; all others keep the defaults' \
      '# listed in docs/config.md. Secrets come from the environment (WECHAT_TOKEN,' \
      '# WECHAT_APPID, WECHAT_APPSECRET, WECHAT_AES_KEY, ADMIN_TOKEN, QUERYLOG_SALT).' \
      '' \
      '[knowledge]' \
      'dir = "/data/knowledge"' \
      '' \
      '[index]' \
      'dir = "/data/index"' \
      '' \
      '[model]' \
      '# Converted while the image was built.' \
      'cache_dir = "/opt/bot/models"' \
      '' \
      '[querylog]' \
      'path = "/data/querylog/querylog.sqlite3"' \
      '' \
      '[server]' \
      '# All interfaces of the container; publish the port on 127.0.0.1 only (nginx in front).' \
      'host = "0.0.0.0"' \
      'port = 8080' \
      > /etc/bot/config.toml
ENV BOT_CONFIG=/etc/bot/config.toml

# Convert the default model now, so the container starts without converting or downloading.
RUN bot convert-model

# Smoke test: build an index of the shipped notices and answer a question with the real model.
# It also embeds the reference laws (3-10 minutes, once): the final image keeps that index.
COPY knowledge /data/knowledge
RUN bot index && bot ask "工会怎么维护新就业形态劳动者的权益？" >/dev/null

# ---- final image: Python, the virtualenv and the model; no compilers, no pip cache ----
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    BOT_CONFIG=/etc/bot/config.toml \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

# A fixed uid, so host folders mounted as volumes can be given to it: chown 10001:10001.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin bot \
 && mkdir -p /data/knowledge /data/index /data/querylog \
 && chown bot:bot /data/index /data/querylog

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/bot/models /opt/bot/models
COPY --from=builder /etc/bot/config.toml /etc/bot/config.toml
# The index the smoke test built, the reference laws' included: a new volume (named, or the
# anonymous one of VOLUME below) starts with it, so the first start embeds nothing; a bind-mounted
# folder hides it and the reference laws are embedded once on the first start instead.
COPY --from=builder --chown=bot:bot /data/index /data/index
# The notices in the repository; a mounted knowledge folder replaces them.
COPY knowledge /data/knowledge

USER bot
WORKDIR /home/bot
VOLUME ["/data/knowledge", "/data/index", "/data/querylog"]
EXPOSE 8080

# `bot serve` finishes the replies in flight and closes the query log on SIGTERM; give it
# [server] shutdown_timeout plus a little: docker stop --time 40 (or --stop-timeout 40).
STOPSIGNAL SIGTERM
# Healthy once the model and the index are loaded (a first index build can take minutes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["bot"]
CMD ["serve"]
