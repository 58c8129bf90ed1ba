#!/usr/bin/env bash
# Copy the dataset from object storage to this node's local disk (a setup command of
# deploy/cluster.yaml, run once per node). `aws s3 sync` skips files already present, so a
# re-run of `ray up` costs only a listing. Trials then read local files and the per-node cache.
set -euo pipefail
if [ -z "${CXR_TUNE_DATA_S3:-}" ]; then
    echo "sync_data: CXR_TUNE_DATA_S3 unset in ~/.cxr-tune/cluster.env; no dataset synced" >&2
    exit 0
fi
dest="${CXR_TUNE_DATA_DIR:?}/$(basename "${CXR_TUNE_DATA_S3%/}")"
mkdir -p "$dest" "${CXR_TUNE_CACHE:?}"
aws s3 sync --only-show-errors "${CXR_TUNE_DATA_S3%/}/" "$dest/"
echo "sync_data: $(find "$dest" -type f | wc -l) files in $dest"
