"""authstream-client: talk to authstream from Python backends.

`ServiceClient` / `AsyncServiceClient` create generations, publish their progress,
revoke users and validate users' tokens; every error answer is an `AuthstreamError`.
`authstream.fastapi` (extra `authstream-client[fastapi]`) protects FastAPI routes.
"""

from ._async import AsyncServiceClient
from ._errors import AuthstreamError
from ._models import Claims, Generation, Status
from ._sync import ServiceClient

__all__ = [
    "AsyncServiceClient",
    "AuthstreamError",
    "Claims",
    "Generation",
    "ServiceClient",
    "Status",
]
__version__ = "0.1.0"
