/* cmd/cmd.h -- the subcommands of `aip` other than serve and the wrapper */
#ifndef AIP_CMD_H
#define AIP_CMD_H



/* cmd_approvals.c: `aip approvals ...` */
int aip_cmd_approvals(int argc, char **argv);
/* cmd_audit.c: `aip audit verify|tools` */
int aip_cmd_audit(int argc, char **argv);
/* cmd_policy_sign.c: `aip sign-policy ...`, `aip verify-policy ...` */
int aip_cmd_sign_policy(int argc, char **argv);
int aip_cmd_verify_policy(int argc, char **argv);

#endif
