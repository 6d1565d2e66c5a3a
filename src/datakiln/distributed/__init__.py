"""Execution beyond one machine: :mod:`datakiln.distributed.ray` lowers dataset plans to Ray.

Nothing here is imported by ``import datakiln``; ray itself is imported only when an engine
is used (``datakiln.engine("ray")``, ``read(..., engine="ray")``, ``ds.to_ray()``,
``datakiln.from_ray``).
"""
