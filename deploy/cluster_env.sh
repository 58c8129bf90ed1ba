# The environment of every cxr-tune cluster node, sourced from ~/.bashrc (deploy/cluster.yaml),
# so `ray submit deploy/cluster.yaml search/dual_weights.py` finds the cluster, the tracking
# server and the storage path without flags. Secrets and per-user values come from
# ~/.cxr-tune/cluster.env (deploy/cluster.env.example lists them); nothing secret is here.
if [ -f "$HOME/.cxr-tune/cluster.env" ]; then
    set -a; . "$HOME/.cxr-tune/cluster.env"; set +a
fi
# Ray token authentication on every node and for every driver (token: ~/.ray/auth_token).
export RAY_AUTH_MODE=token
# search/runner.py connect_ray(): join the running cluster and ship this code to the workers.
export RAY_ADDRESS=auto
# The MLflow server started on the head by deploy/start_mlflow.sh (loopback only).
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:${MLFLOW_PORT:-5000}}"
# The driver logs in as this user (basic-auth); defaults to the admin from cluster.env.
export MLFLOW_TRACKING_USERNAME="${MLFLOW_TRACKING_USERNAME:-${MLFLOW_AUTH_ADMIN_USERNAME:-}}"
export MLFLOW_TRACKING_PASSWORD="${MLFLOW_TRACKING_PASSWORD:-${MLFLOW_AUTH_ADMIN_PASSWORD:-}}"
# GPU workers start from zero (autoscaling): the driver cannot see a GPU when it sizes trials.
export CXR_TUNE_GPUS_PER_TRIAL="${CXR_TUNE_GPUS_PER_TRIAL:-1}"
# ...nor count their CPUs: 8 per GPU on gpu_1x (g5.2xlarge), 12 on gpu_4x; 8 fits both. A trial
# keeps one for training and uses the rest as loader workers (data.num_workers: auto).
export CXR_TUNE_CPUS_PER_TRIAL="${CXR_TUNE_CPUS_PER_TRIAL:-8}"
# The same figure for --trials-per-gpu (CXR_TUNE_TRIALS_PER_GPU): N trials on a GPU share its 8.
export CXR_TUNE_CPUS_PER_GPU="${CXR_TUNE_CPUS_PER_GPU:-8}"
# Tune results and checkpoints on S3: every node reads and writes them (multi-node restore).
export CXR_TUNE_STORAGE_PATH="${CXR_TUNE_STORAGE_PATH:-s3://${CXR_TUNE_BUCKET:-unset-bucket}/ray_results}"
# Node-local disk (mounted into the container): the dataset and the preprocessed cache.
export CXR_TUNE_DATA_DIR="${CXR_TUNE_DATA_DIR:-/mnt/cxr/data}"
export CXR_TUNE_CACHE="${CXR_TUNE_CACHE:-/mnt/cxr/cache}"
