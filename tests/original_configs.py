"""Config classes written as the original's users wrote them: pydantic 1 style on ``BaseConfig``.

No ``from __future__ import annotations`` and no ``Optional``: a field whose default is ``None`` is
optional (pydantic 1's rule), one-of groups are declared by ``Field``'s extra keywords (which
pydantic 2 keeps in ``json_schema_extra``, with its own deprecation warning), a default may be a
config instance, and the tables nest ``OptimizerConfig``. The YAML files of ``tests/data`` are in
the original's format for them (every unused key written as ``null``).
"""

import typing
import warnings
from pathlib import Path

import pydantic

from tml.core.config import BaseConfig
from tml.optimizers.config import AdamConfig, LearningRate, OptimizerConfig, SgdConfig

DATA = Path(__file__).resolve().parent / "data"
"""The YAML files in the original's format."""

with warnings.catch_warnings():
    # pydantic 2's warning about Field's extra keywords (one_of=...), which the original's code uses.
    warnings.simplefilter("ignore", pydantic.PydanticDeprecatedSince20)

    class TowerLearningRates(BaseConfig):
        """A schedule per task tower, and one for the shared layers."""

        tower_learning_rates: typing.Dict[str, LearningRate] = pydantic.Field(  # noqa: UP006
            None, description="Task name -> schedule."
        )
        backbone_learning_rate: LearningRate = pydantic.Field(None, description="The shared layers.")

    class TowerOptimizerConfig(BaseConfig):
        """An algorithm and either per-tower schedules or one schedule."""

        adam: AdamConfig = pydantic.Field(None, one_of="optimizer")
        sgd: SgdConfig = pydantic.Field(None, one_of="optimizer")
        multi_task_learning_rates: TowerLearningRates = pydantic.Field(
            None, one_of="lr", description="One schedule per tower."
        )
        single_task_learning_rate: LearningRate = pydantic.Field(
            None, one_of="lr", description="One schedule for every parameter."
        )

    class RuntimeConfig(BaseConfig):
        enable_amp: bool = pydantic.Field(False, description="Mixed precision.")
        wandb_project: str = pydantic.Field(None, description="Unused here: left out or null.")
        max_threads: int = pydantic.Field(None, description="Unused here: left out or null.")

    class TrainingConfig(BaseConfig):
        save_dir: str = pydantic.Field("/srv/model", description="Where checkpoints go.")
        num_train_steps: pydantic.PositiveInt = 1_000
        checkpoint_every_n: pydantic.PositiveInt = 1_000
        train_log_every_n: pydantic.PositiveInt = 1_000
        num_eval_steps: int = 16
        eval_log_every_n: pydantic.PositiveInt = 5
        eval_timeout_in_s: pydantic.PositiveFloat = 60.0
        num_epochs: pydantic.PositiveInt = 1
        gradient_accumulation: int = pydantic.Field(None, description="Unused here.")

    class TableConfig(BaseConfig):
        name: str
        num_embeddings: pydantic.PositiveInt
        embedding_dim: pydantic.PositiveInt
        data_type: str = pydantic.Field("fp32", description="fp32 or fp16.")
        optimizer: OptimizerConfig = pydantic.Field(None, description="The table's own optimizer.")

    class EmbeddingsConfig(BaseConfig):
        tables: typing.List[TableConfig]  # noqa: UP006

    class RelationConfig(BaseConfig):
        name: str
        lhs: str
        rhs: str
        operator: str = pydantic.Field("translation", description="How lhs maps to rhs.")

    class ModelConfig(BaseConfig):
        embeddings: EmbeddingsConfig
        relations: typing.List[RelationConfig]  # noqa: UP006
        translation_optimizer: OptimizerConfig

    class DataConfig(BaseConfig):
        """Many optional fields, two of them a source of which at most one is given."""

        data_root: str = pydantic.Field(None, at_most_one_of="source", description="A glob.")
        explicit_files: typing.List[str] = pydantic.Field(  # noqa: UP006
            None, json_schema_extra={"at_most_one_of": "source"}
        )
        per_replica_batch_size: pydantic.PositiveInt
        global_negatives: int = 0
        in_batch_negatives: int = 0
        limit: pydantic.PositiveInt = None
        offset: pydantic.PositiveInt = None
        seed: int = None
        shuffle_buffer: int = None
        columns: typing.List[str] = None  # noqa: UP006
        compression: str = None

    class ExperimentConfig(BaseConfig):
        """The whole file: a default that is a config instance (``RuntimeConfig()``) imports."""

        runtime: RuntimeConfig = RuntimeConfig()
        training: TrainingConfig = TrainingConfig()
        model: ModelConfig
        train_data: DataConfig
        validation_data: DataConfig = None
