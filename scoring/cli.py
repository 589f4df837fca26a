"""``python -m scoring``: every command is a thin shell over the library.

Exit codes: 0 done, 1 rejected input (every problem printed), 2 usage error.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import unicodedata
from pathlib import Path

from .errors import KaopingError, Problems
from .labels import ITEM_STATUS, ROLE_LABELS
from .permissions import ROLES, User
from .store import Store, default_path


class _Lazy:
    """A module imported when a command first uses it: ``--help`` and a usage error must not pay
    for pandas, numpy and DuckDB (~0.6 s). Names from heavy modules are imported inside commands."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name, __package__), attr)


pd = _Lazy("pandas")
accounts, periods, views = _Lazy(".accounts"), _Lazy(".periods"), _Lazy(".views")


CLI_OFFICE = User("命令行", "office", system=True)   # the command line acts as the office unless --as


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # Chinese, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"用法错误:{message}\n")
        sys.exit(2)


# -- plain-text tables that line up with Chinese characters ----------------------------------
def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def text_table(headers: list[str], rows: list[list], right: set[int] = frozenset()) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        out = []
        for i, c in enumerate(r):
            pad = " " * (widths[i] - _width(c))
            out.append(pad + c if i in right else c + pad)
        return "  ".join(out).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


# -- commands ------------------------------------------------------------------------------
def cmd_init(store, args, actor):
    if args.demo:
        from .demo import seed_demo

        print(seed_demo(store))
    else:
        print(f"数据库已就绪:{store.path}")
        if not store.one("SELECT count(*) FROM users WHERE role = 'office'")[0]:
            print("尚无政务公开办账号,请创建:python -m scoring user add 用户名 --role office")


def cmd_units(store, args, actor):
    from .units import read_registry, save_units

    result = save_units(store, read_registry(args.file), actor)
    print(f"单位名录已更新:新增{result['new']}个,更新{result['changed']}个,共{result['total']}行")


def cmd_scheme(store, args, actor):
    from .schemes import save_scheme

    text = _read_text(args.file)
    scheme, outcome = save_scheme(store, text, actor)
    n_items = sum(len(s.items) for s in scheme.sections)
    verb = {"new": "已加载", "updated": "已更新", "unchanged": "内容未变化,无需重新加载"}[outcome]
    print(f"考评表 {scheme.id}({scheme.title}){verb}:{len(scheme.sections)}个部分,{n_items}个条目,"
          f"加分项{len(scheme.bonus_items)}个,重大扣分项{len(scheme.penalties)}个,否决项{len(scheme.vetoes)}个;"
          f"适用于 {'、'.join(scheme.groups)},{scheme.period_from}–{scheme.period_to}")


def cmd_ingest(store, args, actor):
    from .ingest import ingest

    path = Path(args.file)
    if not path.is_file():
        raise KaopingError(f"找不到文件:{args.file}")
    result = ingest(store, path.read_bytes(), path.name, actor)
    print(result.message)


def cmd_batches(store, args, actor):
    from .batches import list_batches

    df = list_batches(store, actor)
    if df.empty:
        print("尚无上传批次")
        return
    rows = [[r.batch_id, f"{r.uploaded_at:%Y-%m-%d %H:%M}", r.uploaded_by, r.file_name, r.n_rows,
             "、".join(r.periods), r.status] for r in df.itertuples()]
    print(text_table(["批次", "上传时间", "上传人", "文件名", "行数", "季度", "状态"], rows, right={0, 4}))


def cmd_rollback(store, args, actor):
    from .batches import rollback

    print(rollback(store, args.batch_id, actor))


def cmd_adjust(store, args, actor):
    from .adjustments import adjust

    print(adjust(store, actor, args.unit, args.period, args.item, args.points, args.reason))


def cmd_ranking(store, args, actor):
    from .ranking import COLUMNS, change_label, rank_label

    df = views.ranking(store, actor, args.period, args.group)
    records = views.ranking_records(df)
    if args.format == "json":
        _print_json(records)
    elif args.format == "csv":
        from .exports import to_csv_text

        out = pd.DataFrame(records, columns=COLUMNS)
        out["rank_change"] = out["rank_change"].astype("Int64")
        sys.stdout.write(to_csv_text(out))  # unit names that look like formulas are escaped
    else:
        if not records:
            print(f"{args.period} 没有可排名的数据")
            return
        rows = [[r.period, r.group, rank_label(r.rank, r.tied), r.unit_code, r.unit_name, f"{r.total:.2f}",
                 r.grade, change_label(r.rank_change)] for r in df.itertuples()]
        print(text_table(["季度", "分组", "名次", "单位代码", "单位名称", "总分", "等次", "名次变化"], rows, right={5}))


def cmd_explain(store, args, actor):
    from .ranking import change_label
    from .rules import fmt

    result = views.unit_report(store, actor, args.unit, args.period)
    row = result["rank_row"]
    rank = int(row["rank"])
    if args.format == "json":
        _print_json({
            "unit_code": result["unit_code"], "period": result["period"], "scheme": result["scheme"],
            "items": [{k: it[k] for k in ("item_id", "name", "points", "max", "status", "explanation", "sources")}
                      for it in result["items"]],
            "sections": result["sections"], "bonus": result["bonus"], "veto": result["veto"],
            "total": result["total"], "grade": result["grade"], "rank": rank,
        })
        return
    print(f"{result['unit_name']}({result['unit_code']}) {periods.label(result['period'])} 考评明细,"
          f"考评表 {result['scheme']}")
    rows = [[it["item_id"], it["name"], fmt(it["points"]), "—" if it["max"] is None else fmt(it["max"]),
             ITEM_STATUS[it["status"]], it["explanation"], it["source_text"]] for it in result["items"]]
    print(text_table(["条目", "名称", "得分", "满分", "状态", "说明", "数据来源"], rows, right={2, 3}))
    print()
    print(text_table(["部分", "名称", "得分", "适用满分"],
                     [[s["id"], s["name"], fmt(s["points"]), fmt(s["max"])] for s in result["sections"]],
                     right={2, 3}))
    print()
    rescaled = "" if result["applicable_max"] >= 100 - 1e-9 else f"(按适用总分{fmt(result['applicable_max'])}折算)"
    print(f"基础得分:{fmt(result['base'])}{rescaled}  重大扣分:-{fmt(result['penalty'])}  加分:+{fmt(result['bonus'])}")
    if result["veto"]:
        print(f"单项否决:{result['veto_name']}({result['veto']})")
    tied = "(并列)" if row["tied"] else ""
    print(f"总分:{result['total']:.2f}  等次:{result['grade']}  "
          f"组内名次:{rank}{tied}/{int(row['n_in_group'])}({result['group']})  较上季度:{change_label(row['rank_change'])}")


def cmd_bulletin(store, args, actor):
    from .bulletin import write_bulletin

    print(write_bulletin(store, args.period, args.out, actor))


def cmd_user(store, args, actor):
    if args.user_cmd == "add":
        password = _read_password(args)
        user = accounts.add_user(store, actor, args.name, password, args.role, args.unit)
        print(f"已创建账号 {user.username}({ROLE_LABELS[user.role]}{',单位 ' + user.unit_code if user.unit_code else ''})")
    elif args.user_cmd == "disable":
        changed = accounts.disable_user(store, actor, args.name)
        print(f"已停用账号 {args.name}" if changed else f"账号 {args.name} 此前已是停用状态")
    elif args.user_cmd == "enable":
        changed = accounts.enable_user(store, actor, args.name)
        print(f"已启用账号 {args.name}" if changed else f"账号 {args.name} 本来就是启用状态")
    elif args.user_cmd == "reset-password":
        accounts.reset_password(store, actor, args.name, _read_password(args))
        print(f"已重设账号 {args.name} 的密码")
    elif args.user_cmd == "list":
        df = accounts.list_users(store, actor)
        rows = [[r.username, r.role_label, r.unit_code or "", r.state_label] for r in df.itertuples()]
        print(text_table(["账号", "角色", "单位", "状态"], rows))


def cmd_period(store, args, actor):
    from . import lifecycle

    if args.period_cmd == "status":
        states = lifecycle.states(store, actor)
        if args.format == "json":
            _print_json([s.record() for s in states])
            return
        if not states:
            print("尚无考评数据或考评周期记录")
            return
        rows = [[s.period, s.status, lifecycle.cn_date(s.deadline) if s.deadline else "",
                 lifecycle.cn_date(s.publicity_until) if s.publicity_until else "",
                 f"{s.published_at:%Y-%m-%d %H:%M}" if s.published_at else ""] for s in states]
        print(text_table(["季度", "状态", "报送截止", "公示截止", "定稿时间"], rows))
    elif args.period_cmd == "publish":
        print(lifecycle.publish(store, actor, args.period))
    else:
        print(lifecycle.transition(store, actor, args.period_cmd, args.period,
                                   until=getattr(args, "until", None), reason=getattr(args, "reason", None)))


def cmd_objection(store, args, actor):
    from . import objections
    from .rules import fmt

    if args.objection_cmd == "add":
        print(objections.file(store, actor, args.unit, args.period, args.item, args.reason)[1])
    elif args.objection_cmd == "answer":
        print(objections.answer(store, actor, args.id, args.reason, accept_points=args.accept))
    else:
        df = objections.list_objections(store, actor, period=args.period)
        if args.format == "json":
            _print_json(objections.records(df))
            return
        if df.empty:
            print("没有异议")
            return
        rows = [[f"#{r.id}", r.unit_code, r.unit_name, r.period, r.item_name, r.reason, r.status_label,
                 "" if pd.isna(r.answer) else r.answer, "" if pd.isna(r.points) else fmt(r.points)]
                for r in df.itertuples()]
        print(text_table(["异议", "单位代码", "单位名称", "季度", "考评项", "异议理由", "状态", "答复", "核定分值"], rows))


def cmd_problems(store, args, actor):
    from . import problems

    if args.problems_cmd == "import":
        path = Path(args.file)
        if not path.is_file():
            raise KaopingError(f"找不到文件:{args.file}")
        print(problems.import_problems(store, actor, path.read_bytes(), path.name))
    elif args.problems_cmd == "respond":
        print(problems.respond(store, actor, args.id, args.note, args.link or ""))
    elif args.problems_cmd == "review":
        print(problems.review(store, actor, args.id, args.passed, args.note))
    else:
        df = problems.list_problems(store, actor, unit_code=args.unit, period=args.period, status=args.status)
        if args.format == "json":
            _print_json(problems.records(df))
            return
        if df.empty:
            print("没有符合条件的问题")
            return
        rows = [[f"#{r.id}", r.unit_code, r.unit_name, r.period, r.item_name or "", r.description,
                 f"{r.due_on:%Y-%m-%d}", r.status, "" if pd.isna(r.response) else r.response]
                for r in df.itertuples()]
        print(text_table(["问题", "单位代码", "单位名称", "季度", "考评项", "问题描述", "整改期限", "状态", "整改说明"],
                         rows))
        counts = problems.summary(df)
        print("合计" + str(counts.pop("合计")) + "个:" + "、".join(f"{k}{v}" for k, v in counts.items() if v))


def _read_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("密码(至少10个字符):")
    if getpass.getpass("再次输入密码:") != first:
        raise KaopingError("两次输入的密码不一致")
    return first


def cmd_audit(store, args, actor):
    from .audit import read

    df = read(store, actor, since=args.since, who=args.actor, limit=args.limit)
    rows = [[f"{r.happened_at:%Y-%m-%d %H:%M:%S}", r.actor, r.action_label, r.target, r.detail] for r in df.itertuples()]
    print(text_table(["时间", "操作人", "操作", "对象", "详情"], rows) if rows else "审计日志为空")


def cmd_robustness(store, args, actor):
    from . import analytics

    df = analytics.robustness(store, actor, args.period, args.group)
    if args.format == "json":
        _print_json(analytics.robustness_records(df))
        return
    if df.empty:
        print(f"{args.period} 没有可排名的数据")
        return
    print(f"名次稳健性:{analytics.method_text(df.attrs['draws'])},取第5至第95百分位名次")
    rows = [[r.group, r.unit_code, r.unit_name, r.rank, f"{r.rank_low}–{r.rank_high}", r.band] for r in df.itertuples()]
    print(text_table(["分组", "单位代码", "单位名称", "名次", "名次区间", "档"], rows, right={3, 5}))
    for group in dict.fromkeys(df["group"]):
        print(f"{group}:{analytics.robustness_sentence(df[df['group'] == group])}")


def cmd_whatif(store, args, actor):
    from . import analytics
    from .rules import fmt

    fix = [x for x in args.fix.replace("，", ",").replace("、", ",").split(",") if x.strip()]
    result = analytics.whatif(store, actor, args.unit, args.period, fix)
    if args.format == "json":
        _print_json({k: result[k] for k in analytics.WHATIF_KEYS})
        return
    print(f"{result['unit_code']} {periods.label(result['period'])}:{'、'.join(result['fixed'])} 取满分(其他单位不变)")
    print(f"总分:{result['total']:.2f}(+{fmt(result['gain'])})  等次:{result['grade']}  组内名次:{result['rank']}")
    if result["note"]:
        print(f"说明:{result['note']}")


def cmd_anomalies(store, args, actor):
    from . import analytics

    df = analytics.anomalies(store, actor, args.period)
    if args.format == "json":
        _print_json(analytics.anomaly_records(df))
        return
    if df.empty:
        print(f"{args.period} 没有需要核查的数据")
        return
    rows = [[r.unit_code, r.unit_name, r.kind_label, r.indicator_name, r.detail] for r in df.itertuples()]
    print(text_table(["单位代码", "单位名称", "类型", "指标", "说明"], rows))


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"「{text}」不是整数") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"「{text}」应为正整数")
    return n


def _read_text(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise KaopingError(f"找不到文件:{path}")
    from .readers import decode_bytes

    return decode_bytes(p.read_bytes())


# -- the parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m scoring", description="Kaoping 政务公开考评系统命令行")
    parser.add_argument("--db", help=f"数据库文件(默认取 KAOPING_DB 或 {default_path()})")
    parser.add_argument("--as", dest="as_user", metavar="USER", help="以该账号的身份操作(默认:政务公开办)")
    sub = parser.add_subparsers(dest="command", metavar="命令", parser_class=_Parser)

    def command(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--as", dest="as_user_cmd", metavar="USER", default=None, help="以该账号的身份操作")
        p.set_defaults(func=func)
        return p

    p = command("init", cmd_init, "创建数据库;--demo 载入演示数据和演示账号")
    p.add_argument("--demo", action="store_true", help="载入演示数据和演示账号")
    command("units", cmd_units, "载入或更新单位名录(CSV)").add_argument("file", help="单位名录文件")
    command("scheme", cmd_scheme, "校验并加载考评表(YAML)").add_argument("file", help="考评表 YAML 文件")
    command("ingest", cmd_ingest, "校验并导入上报数据(CSV/XLSX)").add_argument("file", help="上报文件")
    command("batches", cmd_batches, "列出上传批次")
    command("rollback", cmd_rollback, "回滚一个批次").add_argument("batch_id", type=int, help="批次号")
    p = command("adjust", cmd_adjust, "核定某单位某季度某条目的得分")
    p.add_argument("unit", help="单位代码")
    p.add_argument("period", help="季度,如 2025Q3")
    p.add_argument("item", help="条目编号")
    p.add_argument("points", type=float, help="核定分值")
    p.add_argument("--reason", required=True, help="核定理由(必填)")
    p = command("ranking", cmd_ranking, "组内排名")
    p.add_argument("--period", required=True, help="季度,如 2025Q3")
    p.add_argument("--group", help="分组")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="输出格式")
    p = command("explain", cmd_explain, "逐项说明某单位某季度的得分")
    p.add_argument("unit", help="单位代码")
    p.add_argument("--period", required=True, help="季度,如 2025Q3")
    p.add_argument("--format", choices=["table", "json"], default="table", help="输出格式")
    p = command("bulletin", cmd_bulletin, "生成季度通报(docx)")
    p.add_argument("--period", required=True, help="季度,如 2025Q3")
    p.add_argument("--out", required=True, help="输出文件 .docx")
    p = command("user", cmd_user, "账号管理")
    user_sub = p.add_subparsers(dest="user_cmd", metavar="子命令", required=True, parser_class=_Parser)
    u = user_sub.add_parser("add", help="新建账号")
    u.add_argument("name", help="用户名")
    u.add_argument("--role", choices=list(ROLES), required=True,
                   help="角色:" + "、".join(f"{r}({ROLE_LABELS[r]})" for r in ROLES))
    u.add_argument("--unit", help="单位代码(role 为 unit 时必填)")
    u.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码")
    u = user_sub.add_parser("disable", help="停用账号")
    u.add_argument("name", help="用户名")
    u = user_sub.add_parser("enable", help="重新启用账号")
    u.add_argument("name", help="用户名")
    u = user_sub.add_parser("reset-password", help="重设密码")
    u.add_argument("name", help="用户名")
    u.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码")
    user_sub.add_parser("list", help="列出账号")
    p = command("audit", cmd_audit, "查看审计日志")
    p.add_argument("--since", help="起始时间,如 2025-10-01")
    p.add_argument("--actor", help="操作人")
    p.add_argument("--limit", type=_positive_int, default=200, help="最多显示条数")
    p = command("robustness", cmd_robustness, "名次稳健性:评定项和权重扰动下的名次区间")
    p.add_argument("--period", required=True, help="季度,如 2025Q3")
    p.add_argument("--group", help="分组")
    p.add_argument("--format", choices=["table", "json"], default="table", help="输出格式")
    p = command("whatif", cmd_whatif, "假设某些条目取满分(其他单位不变)时的总分、名次和等次")
    p.add_argument("unit", help="单位代码")
    p.add_argument("--period", required=True, help="季度,如 2025Q3")
    p.add_argument("--fix", required=True, metavar="ITEM[,ITEM…]", help="取满分的条目编号,逗号分隔")
    p.add_argument("--format", choices=["table", "json"], default="table", help="输出格式")
    p = command("anomalies", cmd_anomalies, "核查清单:数值突变、疑似雷同、全项满分、自评偏高")
    p.add_argument("--period", required=True, help="季度,如 2025Q3")
    p.add_argument("--format", choices=["table", "json"], default="table", help="输出格式")
    p = command("period", cmd_period, "考评周期:报送 → 审核 → 公示 → 定稿")
    period_sub = p.add_subparsers(dest="period_cmd", metavar="子命令", required=True, parser_class=_Parser)

    def leaf(subs, name, help_text):
        q = subs.add_parser(name, help=help_text, description=help_text)
        q.add_argument("--as", dest="as_user_cmd", metavar="USER", default=argparse.SUPPRESS, help="以该账号的身份操作")
        return q

    q = leaf(period_sub, "status", "列出各季度的状态和日期")
    q.add_argument("--format", choices=["table", "json"], default="table", help="输出格式")
    q = leaf(period_sub, "open", "开放报送(或修改报送截止日期)")
    q.add_argument("period", help="季度,如 2025Q4")
    q.add_argument("--until", required=True, help="报送截止日期,如 2026-01-10")
    leaf(period_sub, "close", "结束报送,进入审核(或撤回公示)").add_argument("period", help="季度")
    q = leaf(period_sub, "publicize", "公示结果(或修改公示截止日期)")
    q.add_argument("period", help="季度")
    q.add_argument("--until", required=True, help="公示截止日期(异议截止),如 2026-01-20")
    leaf(period_sub, "publish", "定稿发布(冻结全部结果)").add_argument("period", help="季度")
    q = leaf(period_sub, "reopen", "重新开放已定稿的季度(必须说明理由)")
    q.add_argument("period", help="季度")
    q.add_argument("--reason", required=True, help="重新开放的理由(必填)")
    p = command("objection", cmd_objection, "公示期间的异议")
    objection_sub = p.add_subparsers(dest="objection_cmd", metavar="子命令", required=True, parser_class=_Parser)
    q = leaf(objection_sub, "add", "对本单位公示结果的某一考评项提出异议(单位账号)")
    q.add_argument("unit", help="单位代码")
    q.add_argument("period", help="季度")
    q.add_argument("item", help="考评项(条目编号或名称)")
    q.add_argument("--reason", required=True, help="异议理由(必填)")
    q = leaf(objection_sub, "answer", "答复异议:采纳并核定,或不予采纳")
    q.add_argument("id", help="异议编号")
    verdict = q.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--accept", type=float, metavar="POINTS", help="采纳,并把该项核定为此分值")
    verdict.add_argument("--reject", action="store_true", help="不予采纳")
    q.add_argument("--reason", required=True, help="答复理由(必填)")
    q = leaf(objection_sub, "list", "列出异议及答复")
    q.add_argument("--period", help="季度")
    q.add_argument("--format", choices=["table", "json"], default="table", help="输出格式")
    p = command("problems", cmd_problems, "问题清单:导入、整改反馈、复核销号")
    problems_sub = p.add_subparsers(dest="problems_cmd", metavar="子命令", required=True, parser_class=_Parser)
    q = leaf(problems_sub, "import", "导入问题清单(CSV/XLSX:单位代码,季度,考评项,问题描述,链接,发现日期,整改期限)")
    q.add_argument("file", help="问题清单文件")
    q = leaf(problems_sub, "list", "列出问题及整改状态")
    q.add_argument("--unit", help="单位代码")
    q.add_argument("--period", help="季度")
    q.add_argument("--status", help="状态:待整改、待复核、已销号、退回、逾期未整改")
    q.add_argument("--format", choices=["table", "json"], default="table", help="输出格式")
    q = leaf(problems_sub, "respond", "反馈整改情况(单位)")
    q.add_argument("id", help="问题编号")
    q.add_argument("--note", required=True, help="整改说明(必填)")
    q.add_argument("--link", help="整改后的网页链接")
    q = leaf(problems_sub, "review", "复核整改:销号或退回")
    q.add_argument("id", help="问题编号")
    verdict = q.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--pass", dest="passed", action="store_true", help="通过,销号")
    verdict.add_argument("--return", dest="returned", action="store_true", help="退回重新整改")
    q.add_argument("--note", required=True, help="复核意见(必填)")
    command("serve", None, "常驻服务:预先载入计算模块,此后本数据库的命令由它执行(快得多;scoring/server.py)")
    from .cli_annual import register as register_annual  # annual, annual-report, annual-bulletin

    register_annual(command, _Parser, text_table)
    return parser


def main(argv: list[str] | None = None, *, serve=None) -> int:
    """Run one command. ``serve``: how to run the ``serve`` command (``python -m scoring`` passes
    :func:`scoring.server.serve`; the server runs its requests through this function)."""
    for stream in (sys.stdout, sys.stderr):  # UTF-8 whatever the locale says (JSON, Chinese tables)
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "serve":  # holds no Store: it opens the database per request
        if serve is None:
            print("错误:常驻服务请用 python -m scoring serve 启动", file=sys.stderr)
            return 2
        return serve(args.db)
    try:
        if getattr(args, "period", None) and args.command in ("ranking", "explain", "bulletin"):
            args.period = periods.parse_period(args.period)
        with Store(args.db) as store:
            periods.live_on_recorded_day(store)
            actor = CLI_OFFICE
            as_user = args.as_user_cmd or args.as_user
            if as_user:
                actor = accounts.get_user(store, as_user)
                if actor is None:
                    raise KaopingError(f"账号「{as_user}」不存在或已停用")
            args.func(store, args, actor)
        return 0
    except Problems as exc:
        _print_problems(exc)
        return 1
    except KaopingError as exc:
        print(f"错误:{exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `batches | head`
        sys.stderr.close()
        return 0


def _print_problems(exc: Problems) -> None:
    table = getattr(exc, "table", None)
    print(f"错误:{exc.title}")
    if table is not None and not table.empty:
        rows = [["" if pd.isna(r.row) else int(r.row), r.column or "", r.value if r.value is not None else "", r.message]
                for r in table.itertuples()]
        print(text_table(["行", "列", "值", "问题"], rows))
    else:
        for p in exc.problems:
            print(f"  {p}")
