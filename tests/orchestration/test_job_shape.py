"""The refresh job's shape: dbt runs as one step after every load, in the partitioned job and in a
history load's job. A dependency between a source asset and another source asset whose dbt source
tests are blocking checks made Dagster split the dbt step around it (dbt_models_2, _3), and a
test of a seed ran in a split step before the seed was built."""

from __future__ import annotations

import pytest

from orchestration.definitions import build_definitions


@pytest.mark.parametrize("partitioned", [True, False], ids=["daily partitions", "history load"])
def test_dbt_is_one_step_downstream_of_every_load(settings_for, tmp_path, partitioned):
    settings = settings_for(tmp_path, days=3)
    job = build_definitions(settings, partitioned=partitioned).resolve_job_def("refresh_warehouse")
    nodes = job.graph.node_dict
    assert sorted(name for name in nodes if name.startswith("dbt")) == ["dbt_models"]
    upstream = job.graph.dependency_structure.input_to_upstream_outputs_for_node("dbt_models")
    feeding = {output.node.name for outputs in upstream.values() for output in outputs}
    loads = {
        name
        for name in nodes
        if ("__" in name or name.endswith("_history"))  # a source's history load is one step
        and not name.startswith(("serving", "dbt"))
        and not name.endswith("freshness")
    }
    slack = {"slack__messages", "slack__channels"} if partitioned else {"slack_history"}
    assert slack | {"ga4__sessions_daily"} <= loads
    assert loads <= feeding  # every load step runs before the one dbt step
