"""Wiring: config → engine → DBPool → services → HTTP resources → site. Nothing global.

Tests build an :class:`App` on an in-memory database with a fake clock; ``calltrack serve``
builds one on the configured database with the real reactor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from calltrack.accounts.resources import AccountResources
from calltrack.accounts.service import AccountsService
from calltrack.attribution.resources import AttributionResources
from calltrack.attribution.service import AttributionService
from calltrack.compute import ComputePool
from calltrack.config import CalltrackConfig
from calltrack.db.engine import create_engine
from calltrack.db.pool import DBPool
from calltrack.leads.outbox_service import OutboxService
from calltrack.leads.outbox_resources import LeadWebhookResources
from calltrack.leads.resources import FormResources, LeadResources, OwnerResources
from calltrack.leads.service import FormsService, LeadsService, OwnersService
from calltrack.numbers.resources import NumberResources, PublicSiteGate
from calltrack.numbers.service import NumbersService
from calltrack.privacy.resources import PrivacyResources
from calltrack.privacy.service import PrivacyService
from calltrack.reports.cost_resources import CostResources
from calltrack.reports.cost_service import CostsService
from calltrack.reports.resources import ReportResources
from calltrack.reports.service import ReportsService
from calltrack.scoring.resources import ScoringResources
from calltrack.scoring.service import ScoringService
from calltrack.telephony.resources import TelephonyResources
from calltrack.telephony.service import TelephonyService
from calltrack.web.openapi import OpenApiResource
from calltrack.web.ops import OpsResources
from calltrack.web.pages import PageResources
from calltrack.web.resource import CalltrackSite, HttpMetrics, Router

logger = logging.getLogger(__name__)


@dataclass
class App:
    config: CalltrackConfig
    engine: Engine
    db: DBPool
    registry: CollectorRegistry
    accounts: AccountsService
    numbers: NumbersService
    router: Router
    site: CalltrackSite
    compute: ComputePool
    telephony: TelephonyService
    forms: FormsService
    leads: LeadsService
    owners: OwnersService
    scoring: ScoringService
    outbox: OutboxService
    attribution: AttributionService
    costs: CostsService
    reports: ReportsService
    privacy: PrivacyService

    def start(self) -> None:
        self.db.start()
        self.compute.start()
        self.numbers.start()
        self.outbox.start()
        self.privacy.start()

    def stop(self) -> None:
        self.privacy.stop()
        self.outbox.stop()
        self.numbers.stop()
        self.compute.stop()
        self.db.stop()


def build_app(
    config: CalltrackConfig,
    *,
    reactor: Any,
    clock: Any = None,
    engine: Engine | None = None,
    synchronous_db: bool = False,
) -> App:
    """Build the whole service.

    Args:
        reactor: delivers database results; also the clock unless ``clock`` is given.
        engine: an existing engine (tests share one); otherwise built from the config.
        synchronous_db: run database work inline (tests with ``task.Clock``).
    """
    clock = clock or reactor
    engine = engine or create_engine(
        config.database.url, pool_size=config.database.pool_size, max_overflow=config.database.max_overflow
    )
    db = DBPool(engine, reactor, max_batch=config.database.max_batch, synchronous=synchronous_db)
    registry = CollectorRegistry()
    accounts = AccountsService(db, clock)
    compute = ComputePool(reactor, synchronous=synchronous_db)
    numbers = NumbersService(db, clock, config.numbers, registry=registry, compute=compute)
    router = Router(HttpMetrics(registry), max_body_bytes=config.http.max_body_bytes)
    OpsResources(db, registry).register(router)
    AccountResources(accounts).register(router)
    gate = PublicSiteGate(numbers, clock, config.http, config.ratelimit)
    NumberResources(numbers, accounts, gate, clock).register(router)
    forms = FormsService(db, clock, config.leads)
    FormResources(forms, accounts, gate).register(router)
    leads = LeadsService(db, clock, config.leads)
    LeadResources(leads, accounts).register(router)
    owners = OwnersService(db, clock)
    OwnerResources(owners, accounts).register(router)
    outbox = OutboxService(db, clock, config.outbox, registry=registry)
    LeadWebhookResources(outbox, accounts).register(router)
    telephony = TelephonyService(db, clock, accounts, config.leads, registry=registry)
    scoring = ScoringService(db, clock, compute)
    telephony.scoring = forms.scoring = scoring
    ScoringResources(scoring, accounts).register(router)
    attribution = AttributionService(db, compute)
    AttributionResources(attribution, accounts, clock).register(router)
    costs = CostsService(db, clock)
    CostResources(costs, accounts, clock).register(router)
    reports = ReportsService(db, compute, attribution, clock, numbers=numbers, leads_config=config.leads)
    ReportResources(reports, accounts, clock).register(router)
    privacy = PrivacyService(db, clock, registry=registry)
    PrivacyResources(privacy, accounts).register(router)
    TelephonyResources(telephony, accounts, clock, config.http, config.telephony).register(router)
    PageResources(accounts, config.http.public_base_url).register(router)
    OpenApiResource(router, config.http.public_base_url).register(router)
    site = CalltrackSite(router, max_body_bytes=config.http.max_body_bytes)
    return App(config, engine, db, registry, accounts, numbers, router, site, compute, telephony, forms, leads, owners, scoring, outbox, attribution, costs, reports, privacy)
