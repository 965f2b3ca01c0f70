// Cycle-accurate model of a 16-bit SDR SDRAM (default: ISSI IS42S16160G-7 at 100 MHz, the
// ULX3S-85F's 32 MB part) for Verilator and Icarus (Verilog-2005).
//
// It stores data and refuses every command that breaks the chip's timing or protocol: the
// first violation sets the sticky `error` flag and `first_error` to its code (below),
// `error_count` counts them all, and each is printed once with the cycle and the rule.
// After a violation the model's data is no longer meaningful; testbenches check `error`.
//
// Pins: the controller's registered outputs (cke, cs_n, ras_n, cas_n, we_n, ba, a, dqm,
// dq_i) are sampled at each rising edge of clk. The bidirectional DQ bus is split: dq_i and
// dq_i_oe are what the controller drives (dq_i_oe high: it drives all 16 bits this cycle),
// dq_o / dq_o_oe what the chip drives (per byte lane, after DQM's two-cycle read latency).
// A READ sampled at edge T drives burst element i during the cycle after edge T+CL-1+i, so
// the controller registers it at edge T+CL+i; a WRITE sampled at edge T takes element i
// from dq_i at edge T+i (DQM high masks a byte, zero latency).
//
// Supported: burst length 1/2/4/8/full page, sequential or interleaved order, CAS latency
// 2 or 3 (at least MIN_CL), burst or single-location writes, READ/WRITE/PRECHARGE/BURST
// TERMINATE interrupting a burst, PRECHARGE of one bank or all, AUTO REFRESH. Not modelled
// and therefore refused (code 19): auto precharge (A10 on READ/WRITE), CKE low (power
// down, self refresh, clock suspend).
//
// Error codes (one per rule):
//   1 command before the power-up wait T_INIT ended      11 ACT within tRRD of another bank's ACT
//   2 ACT/READ/WRITE before init (PRE all, refreshes, MRS) 12 ACT or REFRESH within tRP of PRECHARGE
//   3 MRS while a bank is open                            13 PRECHARGE within tWR of write data
//   4 MRS with a reserved or unsupported mode             14 READ/WRITE to a closed bank
//   5 command within tMRD of MRS                          15 REFRESH while a bank is open
//   6 ACT to an open bank                                 16 command within tRFC of REFRESH
//   7 READ/WRITE within tRCD of ACT                       17 refresh late: > MAX_POSTPONE owed
//   8 PRECHARGE within tRAS of ACT                        18 DQ driven by both sides in a cycle
//   9 row open longer than tRAS max                       19 auto precharge or CKE low (not modelled)
//  10 ACT within tRC of the same bank's ACT               20 command pins not 0/1
module sdram_model #(
    parameter ROW_BITS = 13,
    parameter COL_BITS = 9,
    parameter MIN_CL = 2,
    parameter T_INIT = 10000,
    parameter T_RCD = 2,
    parameter T_RP = 2,
    parameter T_RAS = 5,
    parameter T_RAS_MAX = 10000,
    parameter T_RC = 6,
    parameter T_RRD = 2,
    parameter T_WR = 2,
    parameter T_RFC = 6,
    parameter T_MRD = 2,
    parameter T_REFI = 781,
    parameter MAX_POSTPONE = 8,
    parameter INIT_REFRESHES = 2
) (
    input wire clk,
    input wire power_on,                  // simulation only: high at an edge = the chip is
                                          // powered up anew (all state and flags cleared)
    input wire cke,
    input wire cs_n,
    input wire ras_n,
    input wire cas_n,
    input wire we_n,
    input wire [1:0] ba,
    input wire [12:0] a,
    input wire [1:0] dqm,
    input wire [15:0] dq_i,
    input wire dq_i_oe,
    output reg [15:0] dq_o,
    output reg [1:0] dq_o_oe,
    output reg error,
    output reg [7:0] first_error,
    output reg [31:0] error_count,
    output reg [31:0] refreshes,
    output reg initialised
);
    localparam ADDR_BITS = 2 + ROW_BITS + COL_BITS;
    localparam [3:0] C_MRS = 4'b0000, C_REF = 4'b0001, C_PRE = 4'b0010, C_ACT = 4'b0011,
                     C_WRITE = 4'b0100, C_READ = 4'b0101, C_BST = 4'b0110, C_NOP = 4'b0111;
    localparam [63:0] NEVER = 64'h4000_0000_0000_0000;

    reg [15:0] mem [0:(1 << ADDR_BITS) - 1];

    reg [63:0] cycle;
    reg [3:0] open;                       // bank has an open row
    reg [ROW_BITS-1:0] row [0:3];
    reg [63:0] t_act [0:3];               // edge of the bank's last ACT
    reg [63:0] t_pre [0:3];               // edge of the bank's last PRECHARGE
    reg [63:0] t_wr [0:3];                // edge of the bank's last written data element
    reg [3:0] ras_max_reported;
    reg [63:0] t_act_any, t_ref, t_mrs;

    // mode register
    reg [2:0] cl;
    reg [9:0] burst;                      // words per burst (512 = full page)
    reg interleaved, single_write;
    reg precharged_all;                   // init: PRECHARGE ALL seen
    reg [7:0] init_refs;                  // init: refreshes since that

    // refresh accounting: owed grows by one every T_REFI cycles after power-up
    reg [31:0] refi_timer;
    integer owed;
    reg late_reported;

    // the burst in progress (one at a time, reads and writes alike)
    reg rd_active, wr_active;
    reg [1:0] b_bank;
    reg [ROW_BITS-1:0] b_row;
    reg [COL_BITS-1:0] b_col;
    reg [9:0] b_index, b_len;

    // read data pipeline: element generated at an edge reaches dq_o CL-1 edges later
    reg p_valid [1:3];
    reg [ADDR_BITS-1:0] p_addr [1:3];
    reg [1:0] dqm_d1;                     // DQM of the last edge: read mask latency 2

    wire [3:0] command = {cs_n, ras_n, cas_n, we_n};
    wire [COL_BITS-1:0] col = a[COL_BITS-1:0];

    integer i;
    task clear;
        begin
            cycle = 0; open = 0; precharged_all = 0; init_refs = 0;
            error = 0; first_error = 0; error_count = 0; refreshes = 0; initialised = 0;
            t_act_any = NEVER; t_ref = NEVER; t_mrs = NEVER; refi_timer = 0; owed = 0;
            late_reported = 0; rd_active = 0; wr_active = 0; ras_max_reported = 0;
            cl = 2; burst = 1; interleaved = 0; single_write = 0;
            dq_o <= 0; dq_o_oe <= 0; dqm_d1 = 2'b11;
            b_bank = 0; b_row = 0; b_col = 0; b_index = 0; b_len = 0;
            for (i = 0; i < 4; i = i + 1) begin
                t_act[i] = NEVER; t_pre[i] = NEVER; t_wr[i] = NEVER; row[i] = 0;
            end
            for (i = 1; i <= 3; i = i + 1) begin
                p_valid[i] = 0; p_addr[i] = 0;
            end
        end
    endtask
    initial clear;

    // cycles since an edge recorded as `t` (NEVER: long ago)
    function [63:0] since;
        input [63:0] t;
        since = (t == NEVER) ? NEVER : cycle - t;
    endfunction

    task violation;
        input [7:0] code;
        begin
            if (!error) first_error = code;
            error = 1;
            error_count = error_count + 1;
            $display("sdram_model: cycle %0d: protocol violation %0d: %0s", cycle, code,
                     rule_text(code));
        end
    endtask

    function [8*48-1:0] rule_text;
        input [7:0] code;
        case (code)
            1: rule_text = "command before the power-up wait ended";
            2: rule_text = "ACT/READ/WRITE before initialisation";
            3: rule_text = "MRS while a bank is open";
            4: rule_text = "MRS with a reserved or unsupported mode";
            5: rule_text = "command within tMRD of MRS";
            6: rule_text = "ACT to an open bank";
            7: rule_text = "READ/WRITE within tRCD of ACT";
            8: rule_text = "PRECHARGE within tRAS of ACT";
            9: rule_text = "row open longer than tRAS max";
            10: rule_text = "ACT within tRC of the bank's last ACT";
            11: rule_text = "ACT within tRRD of another bank's ACT";
            12: rule_text = "ACT or REFRESH within tRP of PRECHARGE";
            13: rule_text = "PRECHARGE within tWR of write data";
            14: rule_text = "READ/WRITE to a closed bank";
            15: rule_text = "REFRESH while a bank is open";
            16: rule_text = "command within tRFC of REFRESH";
            17: rule_text = "refresh late: too many refreshes owed";
            18: rule_text = "DQ driven by controller and chip at once";
            19: rule_text = "auto precharge or CKE low (not modelled)";
            20: rule_text = "command pins not 0/1";
            default: rule_text = "unknown";
        endcase
    endfunction

    // word address of burst element `index` from start column `start`
    function [COL_BITS-1:0] burst_col;
        input [COL_BITS-1:0] start;
        input [9:0] index;
        reg [COL_BITS-1:0] mask;
        begin
            if (burst == 512) burst_col = start + index[COL_BITS-1:0];
            else begin
                mask = burst[COL_BITS-1:0] - 1;
                if (interleaved) burst_col = start ^ (index[COL_BITS-1:0] & mask);
                else burst_col = (start & ~mask) | ((start + index[COL_BITS-1:0]) & mask);
            end
        end
    endfunction

    // tRP and tRC / tRRD / tRFC / tMRD checks shared by ACT, REFRESH and MRS
    function idle_after_precharge;
        input dummy;
        integer k;
        begin
            idle_after_precharge = 1;
            for (k = 0; k < 4; k = k + 1)
                if (since(t_pre[k]) < T_RP) idle_after_precharge = 0;
        end
    endfunction

    reg [ADDR_BITS-1:0] gen_addr;
    reg gen_valid;
    reg [15:0] merged;
    integer k;

    always @(posedge clk) if (power_on) clear; else begin
        // ---- the cycle that ends at this edge: bus contention ----
        if (dq_i_oe && (|dq_o_oe)) violation(18);

        // ---- refresh accounting and tRAS max ----
        if (cycle >= T_INIT) begin
            if (refi_timer + 1 >= T_REFI) begin
                refi_timer = 0;
                owed = owed + 1;
            end else refi_timer = refi_timer + 1;
            if (owed > MAX_POSTPONE && !late_reported) begin
                late_reported = 1;
                violation(17);
            end
        end
        for (k = 0; k < 4; k = k + 1)
            if (open[k] && since(t_act[k]) > T_RAS_MAX && !ras_max_reported[k]) begin
                ras_max_reported[k] = 1;
                violation(9);
            end

        // ---- the command sampled at this edge ----
        gen_valid = 0;
        if ((^command) === 1'bx || cke !== 1'b1 && cke !== 1'b0) begin
            violation(20);
        end else if (!cke && cycle >= T_INIT) begin
            violation(19);
        end else if (!cs_n && command != C_NOP) begin
            if (cycle < T_INIT) violation(1);
            if (since(t_mrs) < T_MRD) violation(5);
            if (since(t_ref) < T_RFC) violation(16);
            case (command)
                C_MRS: begin
                    if (open != 0) violation(3);
                    if (!idle_after_precharge(0)) violation(12);
                    if (!((a[6:4] == 2 || a[6:4] == 3) && a[6:4] >= MIN_CL) || a[8:7] != 0
                            || a[12:10] != 0 || (a[2:0] > 3 && a[2:0] != 7)
                            || (a[2:0] == 7 && a[3]))
                        violation(4);
                    cl = a[6:4];
                    burst = (a[2:0] == 7) ? 512 : (10'd1 << a[2:0]);
                    interleaved = a[3];
                    single_write = a[9];
                    t_mrs = cycle;
                    if (precharged_all && init_refs >= INIT_REFRESHES) initialised = 1;
                end
                C_REF: begin
                    if (open != 0) violation(15);
                    if (!idle_after_precharge(0)) violation(12);
                    t_ref = cycle;
                    refreshes = refreshes + 1;
                    if (owed > -MAX_POSTPONE) owed = owed - 1;
                    if (precharged_all && init_refs < 255) init_refs = init_refs + 1;
                end
                C_PRE: begin
                    for (k = 0; k < 4; k = k + 1)
                        if (a[10] || ba == k) begin
                            if (open[k]) begin
                                if (since(t_act[k]) < T_RAS) violation(8);
                                if (since(t_wr[k]) < T_WR) violation(13);
                                t_pre[k] = cycle;
                            end
                            open[k] = 0;
                            ras_max_reported[k] = 0;
                        end
                    if (a[10] && cycle >= T_INIT) precharged_all = 1;
                    if ((rd_active || wr_active) && (a[10] || ba == b_bank)) begin
                        rd_active = 0;
                        wr_active = 0;
                    end
                end
                C_ACT: begin
                    if (!initialised) violation(2);
                    if (open[ba]) violation(6);
                    if (since(t_act[ba]) < T_RC) violation(10);
                    if (since(t_act_any) < T_RRD) violation(11);
                    if (since(t_pre[ba]) < T_RP) violation(12);
                    open[ba] = 1;
                    row[ba] = a[ROW_BITS-1:0];
                    t_act[ba] = cycle;
                    t_act_any = cycle;
                end
                C_READ, C_WRITE: begin
                    if (!initialised) violation(2);
                    if (a[10]) violation(19);
                    if (!open[ba]) violation(14);
                    else if (since(t_act[ba]) < T_RCD) violation(7);
                    rd_active = command == C_READ;
                    wr_active = command == C_WRITE;
                    b_bank = ba;
                    b_row = row[ba];
                    b_col = col;
                    b_index = 0;
                    b_len = (command == C_WRITE && single_write) ? 1 : burst;
                end
                C_BST: begin
                    rd_active = 0;
                    wr_active = 0;
                end
                default: ;
            endcase
        end

        // ---- the burst element of this edge ----
        if (rd_active || wr_active) begin
            gen_addr = {b_bank, b_row, burst_col(b_col, b_index)};
            if (wr_active) begin
                merged = mem[gen_addr];
                if (!dqm[0]) merged[7:0] = dq_i[7:0];
                if (!dqm[1]) merged[15:8] = dq_i[15:8];
                mem[gen_addr] = merged;
                t_wr[b_bank] = cycle;
            end else gen_valid = 1;
            b_index = b_index + 1;
            if (b_index == b_len) begin
                rd_active = 0;
                wr_active = 0;
            end
        end

        // ---- read data: element generated CL-1 edges ago drives the bus until the next edge ----
        if (cl == 3) begin
            dq_o <= mem[p_addr[2]];
            dq_o_oe <= {2{p_valid[2]}} & ~dqm_d1;
        end else begin
            dq_o <= mem[p_addr[1]];
            dq_o_oe <= {2{p_valid[1]}} & ~dqm_d1;
        end
        p_valid[2] = p_valid[1];
        p_addr[2] = p_addr[1];
        p_valid[1] = gen_valid;
        p_addr[1] = gen_addr;
        dqm_d1 = dqm;

        cycle = cycle + 1;
    end
endmodule
